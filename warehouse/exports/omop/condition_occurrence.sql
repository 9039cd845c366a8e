-- condition_occurrence: OMOP CDM v5.4 CONDITION_OCCURRENCE, one row per CRS or ICANS episode.
-- Sources: toxicity, concept_map. The ASTCT 2019 grade picks the ICD-10-CM code (D89.831-5
-- for CRS, G92.01-5 for ICANS), kept as condition_source_value; condition_concept_id is its
-- standard concept from the map (0 where the map has not resolved it).
SELECT CAST(row_number() OVER (ORDER BY p.person_id, t.onset_date, t.tox_type) AS INTEGER)
           AS condition_occurrence_id,
       p.person_id,
       coalesce(m.concept_id, 0) AS condition_concept_id,
       t.onset_date AS condition_start_date,
       CAST(t.onset_date AS TIMESTAMP) AS condition_start_datetime,
       t.resolution_date AS condition_end_date,
       CAST(t.resolution_date AS TIMESTAMP) AS condition_end_datetime,
       (SELECT concept_id FROM concept_map WHERE domain = 'Type Concept' AND source_key = 'EHR')
           AS condition_type_concept_id,
       0 AS condition_status_concept_id,
       CAST(NULL AS VARCHAR) AS stop_reason,
       CAST(NULL AS INTEGER) AS provider_id,
       CAST(NULL AS INTEGER) AS visit_occurrence_id,
       CAST(NULL AS INTEGER) AS visit_detail_id,
       m.concept_code AS condition_source_value,
       0 AS condition_source_concept_id,
       t.tox_type || ' grade ' || CAST(t.grade_astct AS VARCHAR) || ' (ASTCT 2019)' AS condition_status_source_value
FROM toxicity t
JOIN person_ids p USING (study_id)
LEFT JOIN concept_map m ON m.domain = 'Condition' AND m.source_key = t.tox_type || '|' || CAST(t.grade_astct AS VARCHAR)
ORDER BY condition_occurrence_id
