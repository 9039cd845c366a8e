-- ADTTE: CDISC ADaM time-to-event dataset (Basic Data Structure), one row per subject and parameter.
-- Grain: one row per (USUBJID, PARAMCD). Sources: analysis_patient, toxicity, study_config.
-- Parameters: OS (infusion to death), LFS (CR date to relapse or death; CR subjects only),
-- TTCRS and TTICANS (infusion to the first CRS / ICANS onset). CNSR = 0 for an event and
-- 1 for a censored time, as the ADaM BDS for time-to-event defines. AVAL is in days,
-- ADT - STARTDT, the same day count analysis_patient turns into months (days / (365.25 / 12)).
-- Onset times are censored at the end of OS (death counts as censoring for onset).
-- Columns:
--   STUDYID: Study Identifier
--   USUBJID: Unique Subject Identifier
--   SITEID: Study Site Identifier
--   PARAMCD: Parameter Code
--   PARAM: Parameter
--   AVAL: Analysis Value
--   AVALU: Analysis Value Unit
--   STARTDT: Time-to-Event Origin Date for Subject
--   ADT: Analysis Date
--   CNSR: Censor
--   EVNTDESC: Event or Censoring Description
--   SRCDOM: Source Data (warehouse table)
WITH onset AS (
    SELECT study_id,
           min(onset_date) FILTER (WHERE tox_type = 'CRS') AS crs_onset,
           min(onset_date) FILTER (WHERE tox_type = 'ICANS') AS icans_onset
    FROM toxicity
    GROUP BY study_id
),
events AS (
    SELECT study_id, site_id, 'OS' AS paramcd, 'Overall Survival' AS param, 1 AS ord,
           infusion_date AS startdt, os_end_date AS adt, os_event = 1 AS is_event,
           CASE WHEN os_event = 1 THEN 'DEATH' ELSE 'LAST KNOWN ALIVE OR CUT-OFF' END AS evntdesc
    FROM analysis_patient
    UNION ALL
    SELECT study_id, site_id, 'LFS', 'Leukemia-Free Survival from CR', 2,
           cr_date, lfs_end_date, lfs_event = 1,
           CASE WHEN lfs_event = 1 THEN 'RELAPSE OR DEATH' ELSE 'LAST KNOWN ALIVE IN CR OR CUT-OFF' END
    FROM analysis_patient
    WHERE cr_d30
    UNION ALL
    SELECT a.study_id, a.site_id, 'TTCRS', 'Time to CRS Onset', 3,
           a.infusion_date, coalesce(o.crs_onset, a.os_end_date), o.crs_onset IS NOT NULL,
           CASE WHEN o.crs_onset IS NOT NULL THEN 'CRS ONSET' ELSE 'NO CRS BY END OF FOLLOW-UP' END
    FROM analysis_patient a LEFT JOIN onset o USING (study_id)
    UNION ALL
    SELECT a.study_id, a.site_id, 'TTICANS', 'Time to ICANS Onset', 4,
           a.infusion_date, coalesce(o.icans_onset, a.os_end_date), o.icans_onset IS NOT NULL,
           CASE WHEN o.icans_onset IS NOT NULL THEN 'ICANS ONSET' ELSE 'NO ICANS BY END OF FOLLOW-UP' END
    FROM analysis_patient a LEFT JOIN onset o USING (study_id)
)
SELECT (SELECT value FROM study_config WHERE key = 'study') AS STUDYID,
       study_id AS USUBJID,
       site_id AS SITEID,
       paramcd AS PARAMCD,
       param AS PARAM,
       CAST(date_diff('day', startdt, adt) AS DOUBLE) AS AVAL,
       'DAYS' AS AVALU,
       startdt AS STARTDT,
       adt AS ADT,
       CASE WHEN is_event THEN 0.0 ELSE 1.0 END AS CNSR,
       evntdesc AS EVNTDESC,
       CASE WHEN paramcd IN ('OS', 'LFS') THEN 'OUTCOME' ELSE 'TOXICITY' END AS SRCDOM
FROM events
ORDER BY USUBJID, ord
