-- analysis_patient: the analysis-ready record of the study, one row per patient.
-- Grain: one row per patient (study_id). Sources: patient, infusion, toxicity,
-- toxicity_treatment, response, lab, outcome, study_config (cut-off date), codelist_agent.
-- Rules, as in the study (Frontiers in Immunology 2024, doi 10.3389/fimmu.2024.1448709):
--   Day 0 is the first CAR-T infusion; dose is that infusion's dose.
--   OS runs from infusion to death from any cause, censored at last contact and never
--   past the cut-off date (study_config), so a rerun next year gives the same numbers.
--   LFS starts at the CR date, not at infusion, as in the study; its event is relapse or
--   death; null for patients without CR. Months = days / (365.25 / 12).
--   lfs_cause splits the LFS event for competing-risks analysis: 'relapse' (relapse
--   first; a relapse on the day of death counts as relapse), 'nrm' (non-relapse
--   mortality: death in CR, no relapse before), 'censored' (no LFS event by the
--   cut-off); null for patients without CR. The study records relapse and death dates
--   only, not causes of death, so NRM is "death without a recorded relapse".
-- Portability: NULL-ignoring least() is written as coalesce(least(a, b), a, b), because
-- Trino and Spark return NULL when any argument is NULL; month counts are cast to DOUBLE.
-- Columns:
--   study_id: Pseudonymous patient id (keyed HMAC of site and local id).
--   site_id: Center identifier from carpool.yml.
--   sex {sex}: Sex at birth.
--   age_years [a]: Age at infusion, in whole years.
--   ph_positive: Philadelphia chromosome (BCR-ABL1) positive.
--   disease_status {disease_status}: Primary refractory or relapsed disease at CAR-T.
--   n_relapses: Number of relapses before CAR-T (0 for primary refractory).
--   prior_lines: Number of prior therapy lines.
--   bm_blasts_pct [%]: Bone marrow blasts before CAR-T.
--   infusion_date: Date of the first CAR-T infusion: day 0 of every time in this view.
--   dose_1e6_per_kg [10*6/kg]: CAR-T cells per kg body weight at the first infusion.
--   crs_any: Any CRS episode (crs_grade > 0).
--   crs_grade: Worst ASTCT 2019 CRS grade over the patient's episodes; 0 = no CRS.
--   icans_any: Any ICANS episode (icans_grade > 0).
--   icans_grade: Worst ASTCT 2019 ICANS grade over the patient's episodes; 0 = no ICANS.
--   crs_icans_concurrent: Both CRS and ICANS occurred (at any time after infusion), not necessarily overlapping in time.
--   tox_group: 'none' = neither CRS nor ICANS; 'grade3plus' = CRS or ICANS grade >= 3; 'other' = everyone else (grade 1-2 CRS and/or ICANS), as in Fig. 1F and Table 2.
--   crs_grade_group: 'none', 'grade1_2' or 'grade3plus' by the worst CRS grade (strata of Figs. 1C-D and 3A-D).
--   icans_grade_group: 'none', 'grade1_2' or 'grade3plus' by the worst ICANS grade.
--   steroids: Any course of a corticosteroid (codelist_agent.is_steroid) given for CRS or ICANS.
--   tocilizumab: Any course of tocilizumab given for CRS or ICANS.
--   cr_d30: Complete response at the first (day-30) response assessment.
--   mrd_neg_cr: MRD-negative at that assessment, among patients in CR; null otherwise.
--   peak_il6_pg_ml [pg/mL]: Highest serum IL-6 after infusion.
--   peak_ferritin_ng_ml [ng/mL]: Highest serum ferritin after infusion.
--   peak_car_copies [{copies}/ug]: Highest CAR transgene copies per microgram genomic DNA in blood (qPCR).
--   cr_date: Date of the first response assessment when it was a CR (start of LFS); null otherwise.
--   os_end_date: End of OS: death date, or the censoring date (last contact, never past the cut-off).
--   lfs_end_date: End of LFS: relapse or death date, or the censoring date; null without CR.
--   os_months [mo]: Overall survival time: infusion to death, or censored at last contact or cut-off.
--   os_event: 1 = died on or before the cut-off date, 0 = censored.
--   lfs_months [mo]: Leukemia-free survival time from the CR date to relapse or death, or censored; null without CR.
--   lfs_event: 1 = relapse or death on or before the cut-off date, 0 = censored; null without CR.
--   lfs_cause: The LFS event split for competing risks: 'relapse', 'nrm' (non-relapse mortality) or 'censored'; null without CR.
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
           bool_or(coalesce(c.is_steroid, false)) AS steroids,
           bool_or(t.agent = 'tocilizumab') AS tocilizumab
    FROM toxicity_treatment t
    LEFT JOIN codelist_agent c ON c.code = t.agent
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
follow_dates AS (
    SELECT o.study_id,
           i.infusion_date,
           r.response = 'CR' AS cr,
           r.assessment_date AS cr_date,
           o.death_date IS NOT NULL AND o.death_date <= cfg.cutoff_date AS died,
           coalesce(least(coalesce(o.death_date, o.last_contact_date), cfg.cutoff_date),
                    coalesce(o.death_date, o.last_contact_date), cfg.cutoff_date) AS os_end,
           coalesce(least(o.relapse_date, o.death_date), o.relapse_date, o.death_date) AS lfs_event_date,
           o.relapse_date,
           cfg.cutoff_date
    FROM outcome o
    JOIN first_infusion i USING (study_id)
    JOIN first_response r USING (study_id)
    CROSS JOIN cfg
),
follow AS (
    SELECT *,
           CASE WHEN lfs_event_date <= cutoff_date THEN lfs_event_date ELSE os_end END AS lfs_end
    FROM follow_dates
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
           i.infusion_date,
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
           CASE WHEN f.cr THEN f.cr_date END AS cr_date,
           f.os_end AS os_end_date,
           CASE WHEN f.cr THEN f.lfs_end END AS lfs_end_date,
           CAST(date_diff('day', f.infusion_date, f.os_end) AS DOUBLE) / (365.25 / 12) AS os_months,
           CASE WHEN f.died THEN 1 ELSE 0 END AS os_event,
           CASE WHEN f.cr THEN
               CAST(date_diff('day', f.cr_date, f.lfs_end) AS DOUBLE) / (365.25 / 12)
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
