-- visit_occurrence: OMOP CDM v5.4 VISIT_OCCURRENCE, one inpatient visit per CAR-T infusion.
-- Source: infusion. The visit is the infusion day (the export has no admission dates).
SELECT CAST(row_number() OVER (ORDER BY p.person_id, i.infusion_date) AS INTEGER) AS visit_occurrence_id,
       p.person_id,
       (SELECT concept_id FROM concept_map WHERE domain = 'Visit') AS visit_concept_id,
       i.infusion_date AS visit_start_date,
       CAST(i.infusion_date AS TIMESTAMP) AS visit_start_datetime,
       i.infusion_date AS visit_end_date,
       CAST(i.infusion_date AS TIMESTAMP) AS visit_end_datetime,
       (SELECT concept_id FROM concept_map WHERE domain = 'Type Concept' AND source_key = 'EHR')
           AS visit_type_concept_id,
       CAST(NULL AS INTEGER) AS provider_id,
       CAST(NULL AS INTEGER) AS care_site_id,
       'CAR-T infusion: ' || i.product AS visit_source_value,
       0 AS visit_source_concept_id,
       0 AS admitted_from_concept_id,
       CAST(NULL AS VARCHAR) AS admitted_from_source_value,
       0 AS discharged_to_concept_id,
       CAST(NULL AS VARCHAR) AS discharged_to_source_value,
       CAST(NULL AS INTEGER) AS preceding_visit_occurrence_id
FROM infusion i
JOIN person_ids p USING (study_id)
ORDER BY visit_occurrence_id
