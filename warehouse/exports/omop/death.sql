-- death: OMOP CDM v5.4 DEATH, one row per patient who died on or before the cut-off date.
-- Sources: analysis_patient (os_event, os_end_date). Cause of death is not collected.
SELECT p.person_id,
       a.os_end_date AS death_date,
       CAST(a.os_end_date AS TIMESTAMP) AS death_datetime,
       (SELECT concept_id FROM concept_map WHERE domain = 'Type Concept' AND source_key = 'EHR')
           AS death_type_concept_id,
       0 AS cause_concept_id,
       CAST(NULL AS VARCHAR) AS cause_source_value,
       0 AS cause_source_concept_id
FROM analysis_patient a
JOIN person_ids p USING (study_id)
WHERE a.os_event = 1
ORDER BY p.person_id
