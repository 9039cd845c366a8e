-- ADSL: CDISC ADaM subject-level analysis dataset, one row per subject.
-- Grain: one row per patient (USUBJID = study_id). Sources: analysis_patient, infusion, study_config.
-- Variable names, lengths (<= 8) and labels (<= 40) follow SAS transport v5; every subject
-- received the CAR-T product of their first infusion (code list product), so the planned
-- and actual treatment are the same and the
-- safety and ITT flags are 'Y'. Toxicity groups are the study's (analysis_patient).
-- Columns:
--   STUDYID: Study Identifier
--   USUBJID: Unique Subject Identifier
--   SUBJID: Subject Identifier for the Study
--   SITEID: Study Site Identifier
--   AGE: Age
--   AGEU: Age Units
--   SEX: Sex
--   TRT01P: Planned Treatment for Period 01
--   TRT01A: Actual Treatment for Period 01
--   TRTSDT: Date of First Exposure to Treatment
--   ITTFL: Intent-To-Treat Population Flag
--   SAFFL: Safety Population Flag
--   PHPOSFL: Ph-Positive Flag
--   DISSTAT: Disease Status at CAR-T
--   NRELAPSE: Number of Prior Relapses
--   PRLINES: Number of Prior Therapy Lines
--   BMBLAST: Bone Marrow Blasts (%) Before CAR-T
--   DOSE: CAR-T Dose (10^6 cells/kg)
--   CRSFL: Any CRS Flag
--   CRSGR: Worst CRS Grade (ASTCT 2019)
--   ICANSFL: Any ICANS Flag
--   ICANSGR: Worst ICANS Grade (ASTCT 2019)
--   TOXGRP: CRS/ICANS Group (none/other/grade3plus)
--   STERFL: Steroids for CRS/ICANS Flag
--   TOCIFL: Tocilizumab for CRS/ICANS Flag
--   CRFL: CR at Day-30 Assessment Flag
--   MRDNCRFL: MRD-Negative CR Flag
WITH product AS (
    SELECT study_id, arg_min(product, infusion_date) AS product FROM infusion GROUP BY study_id
)
SELECT (SELECT value FROM study_config WHERE key = 'study') AS STUDYID,
       study_id AS USUBJID,
       study_id AS SUBJID,
       site_id AS SITEID,
       CAST(age_years AS DOUBLE) AS AGE,
       'YEARS' AS AGEU,
       sex AS SEX,
       t.product AS TRT01P,
       t.product AS TRT01A,
       infusion_date AS TRTSDT,
       'Y' AS ITTFL,
       'Y' AS SAFFL,
       CASE WHEN ph_positive THEN 'Y' ELSE 'N' END AS PHPOSFL,
       upper(disease_status) AS DISSTAT,
       CAST(n_relapses AS DOUBLE) AS NRELAPSE,
       CAST(prior_lines AS DOUBLE) AS PRLINES,
       bm_blasts_pct AS BMBLAST,
       dose_1e6_per_kg AS DOSE,
       CASE WHEN crs_any THEN 'Y' ELSE 'N' END AS CRSFL,
       CAST(crs_grade AS DOUBLE) AS CRSGR,
       CASE WHEN icans_any THEN 'Y' ELSE 'N' END AS ICANSFL,
       CAST(icans_grade AS DOUBLE) AS ICANSGR,
       upper(tox_group) AS TOXGRP,
       CASE WHEN steroids THEN 'Y' ELSE 'N' END AS STERFL,
       CASE WHEN tocilizumab THEN 'Y' ELSE 'N' END AS TOCIFL,
       CASE WHEN cr_d30 THEN 'Y' ELSE 'N' END AS CRFL,
       CASE WHEN mrd_neg_cr THEN 'Y' WHEN cr_d30 THEN 'N' END AS MRDNCRFL
FROM analysis_patient
JOIN product t USING (study_id)
ORDER BY USUBJID
