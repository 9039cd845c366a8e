-- observation_period: OMOP CDM v5.4 OBSERVATION_PERIOD, one row per patient.
-- Sources: analysis_patient, toxicity, toxicity_treatment, lab. From the earliest recorded
-- date (infusion, lab, toxicity, treatment) to the latest (end of OS follow-up or a later
-- record), so every event of the person lies inside it. Type: EHR.
WITH dates AS (
    SELECT study_id, infusion_date AS d FROM analysis_patient
    UNION ALL SELECT study_id, os_end_date FROM analysis_patient
    UNION ALL SELECT study_id, onset_date FROM toxicity
    UNION ALL SELECT study_id, resolution_date FROM toxicity
    UNION ALL SELECT study_id, start_date FROM toxicity_treatment
    UNION ALL SELECT study_id, end_date FROM toxicity_treatment
    UNION ALL SELECT study_id, sample_date FROM lab
)
SELECT p.person_id AS observation_period_id,
       p.person_id,
       min(d.d) AS observation_period_start_date,
       max(d.d) AS observation_period_end_date,
       (SELECT concept_id FROM concept_map WHERE domain = 'Type Concept' AND source_key = 'EHR')
           AS period_type_concept_id
FROM dates d
JOIN person_ids p USING (study_id)
WHERE d.d IS NOT NULL
GROUP BY p.person_id
ORDER BY p.person_id
