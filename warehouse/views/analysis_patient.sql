-- analysis_patient: the analysis-ready record of the study, one row per patient.
-- Grain: one row per patient (study_id). Sources: patient, infusion, toxicity,
-- toxicity_treatment, response, lab, outcome, study_config (cut-off date).
-- Rules, as in the study (Frontiers in Immunology 2024, doi 10.3389/fimmu.2024.1448709):
--   Day 0 is the first CAR-T infusion; dose is that infusion's dose.
--   crs_grade / icans_grade: worst ASTCT 2019 grade over the patient's episodes, 0 = none.
--   tox_group: 'none' = neither CRS nor ICANS; 'grade3plus' = CRS or ICANS grade >= 3;
--   'other' = everyone else (grade 1-2 CRS and/or ICANS), as in Fig. 1F and Table 2.
--   crs_grade_group / icans_grade_group: 'none', 'grade1_2' or 'grade3plus' by the worst
--   grade, the strata of Figs. 1C-D and 3A-D.
--   steroids / tocilizumab: any course of the agent given for CRS or ICANS.
--   cr_d30: CR at the first (day-30) response assessment; mrd_neg_cr only among CR, else null.
--   OS runs from infusion to death from any cause, censored at last contact and never
--   past the cut-off date (study_config), so a rerun next year gives the same numbers.
--   LFS starts at the CR date, not at infusion, as in the study; its event is relapse or
--   death; null for patients without CR. Months = days / (365.25 / 12).
--   lfs_cause splits the LFS event for competing-risks analysis: 'relapse' (relapse
--   first; a relapse on the day of death counts as relapse), 'nrm' (non-relapse
--   mortality: death in CR, no relapse before), 'censored' (no LFS event by the
--   cut-off); null for patients without CR. The study records relapse and death dates
--   only, not causes of death, so NRM is "death without a recorded relapse".
WITH cfg AS (
    SELECT CAST(value AS DATE) AS cutoff_date FROM study_config WHERE key = 'cutoff_date'
),
first_infusion AS (
    SELECT study_id,
           min(infusion_date) AS infusion_date,
           arg_min(dose_1e6_per_kg, infusion_date) AS dose_1e6_per_kg
    FROM infusion
    GROUP BY study_id
),
tox AS (
    SELECT study_id,
           coalesce(max(grade_astct) FILTER (WHERE tox_type = 'CRS'), 0) AS crs_grade,
           coalesce(max(grade_astct) FILTER (WHERE tox_type = 'ICANS'), 0) AS icans_grade
    FROM toxicity
    GROUP BY study_id
),
treatment AS (
    SELECT study_id,
           bool_or(agent IN ('dexamethasone', 'methylprednisolone', 'prednisone', 'hydrocortisone')) AS steroids,
           bool_or(agent = 'tocilizumab') AS tocilizumab
    FROM toxicity_treatment
    GROUP BY study_id
),
first_response AS (
    SELECT study_id,
           arg_min(response, assessment_date) AS response,
           arg_min(mrd_negative, assessment_date) AS mrd_negative,
           min(assessment_date) AS assessment_date
    FROM response
    GROUP BY study_id
),
peaks AS (
    SELECT study_id,
           max(value) FILTER (WHERE analyte = 'il6') AS peak_il6_pg_ml,
           max(value) FILTER (WHERE analyte = 'ferritin') AS peak_ferritin_ng_ml,
           max(value) FILTER (WHERE analyte = 'car_copies') AS peak_car_copies
    FROM lab
    GROUP BY study_id
),
follow AS (
    SELECT o.study_id,
           i.infusion_date,
           r.response = 'CR' AS cr,
           r.assessment_date AS cr_date,
           o.death_date IS NOT NULL AND o.death_date <= cfg.cutoff_date AS died,
           least(coalesce(o.death_date, o.last_contact_date), cfg.cutoff_date) AS os_end,
           least(o.relapse_date, o.death_date) AS lfs_event_date,
           o.relapse_date,
           cfg.cutoff_date
    FROM outcome o
    JOIN first_infusion i USING (study_id)
    JOIN first_response r USING (study_id)
    CROSS JOIN cfg
),
final AS (
    SELECT p.study_id,
           p.site_id,
           p.sex,
           p.age_years,
           p.ph_positive,
           p.disease_status,
           p.n_relapses,
           p.prior_lines,
           p.bm_blasts_pct,
           i.dose_1e6_per_kg,
           coalesce(t.crs_grade, 0) > 0 AS crs_any,
           coalesce(t.crs_grade, 0) AS crs_grade,
           coalesce(t.icans_grade, 0) > 0 AS icans_any,
           coalesce(t.icans_grade, 0) AS icans_grade,
           coalesce(t.crs_grade, 0) > 0 AND coalesce(t.icans_grade, 0) > 0 AS crs_icans_concurrent,
           CASE
               WHEN coalesce(t.crs_grade, 0) = 0 AND coalesce(t.icans_grade, 0) = 0 THEN 'none'
               WHEN greatest(coalesce(t.crs_grade, 0), coalesce(t.icans_grade, 0)) >= 3 THEN 'grade3plus'
               ELSE 'other'
           END AS tox_group,
           CASE WHEN coalesce(t.crs_grade, 0) = 0 THEN 'none'
                WHEN t.crs_grade >= 3 THEN 'grade3plus' ELSE 'grade1_2' END AS crs_grade_group,
           CASE WHEN coalesce(t.icans_grade, 0) = 0 THEN 'none'
                WHEN t.icans_grade >= 3 THEN 'grade3plus' ELSE 'grade1_2' END AS icans_grade_group,
           coalesce(tr.steroids, false) AS steroids,
           coalesce(tr.tocilizumab, false) AS tocilizumab,
           f.cr AS cr_d30,
           CASE WHEN f.cr THEN r.mrd_negative END AS mrd_neg_cr,
           pk.peak_il6_pg_ml,
           pk.peak_ferritin_ng_ml,
           pk.peak_car_copies,
           date_diff('day', f.infusion_date, f.os_end) / (365.25 / 12) AS os_months,
           CASE WHEN f.died THEN 1 ELSE 0 END AS os_event,
           CASE WHEN f.cr THEN
               date_diff('day', f.cr_date,
                         CASE WHEN f.lfs_event_date <= f.cutoff_date THEN f.lfs_event_date ELSE f.os_end END)
               / (365.25 / 12)
           END AS lfs_months,
           CASE WHEN f.cr THEN CASE WHEN f.lfs_event_date <= f.cutoff_date THEN 1 ELSE 0 END END AS lfs_event,
           CASE WHEN f.cr THEN
               CASE WHEN f.lfs_event_date > f.cutoff_date OR f.lfs_event_date IS NULL THEN 'censored'
                    WHEN f.relapse_date = f.lfs_event_date THEN 'relapse'
                    ELSE 'nrm' END
           END AS lfs_cause
    FROM patient p
    JOIN first_infusion i USING (study_id)
    JOIN follow f USING (study_id)
    JOIN first_response r USING (study_id)
    LEFT JOIN tox t USING (study_id)
    LEFT JOIN treatment tr USING (study_id)
    LEFT JOIN peaks pk USING (study_id)
)
SELECT * FROM final
ORDER BY site_id, study_id
