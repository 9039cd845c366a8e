-- person: OMOP CDM v5.4 PERSON, one row per patient.
-- Sources: analysis_patient, concept_map (concept_map.csv). person_id is the patient's rank
-- by study_id (OMOP ids are integers); person_source_value keeps the study_id. The warehouse
-- holds no date of birth (a direct identifier), so year_of_birth is the infusion year minus
-- the age at infusion: exact to within one year.
SELECT p.person_id,
       coalesce(g.concept_id, 0) AS gender_concept_id,
       CAST(year(a.infusion_date) - a.age_years AS INTEGER) AS year_of_birth,
       CAST(NULL AS INTEGER) AS month_of_birth,
       CAST(NULL AS INTEGER) AS day_of_birth,
       CAST(NULL AS TIMESTAMP) AS birth_datetime,
       0 AS race_concept_id,
       0 AS ethnicity_concept_id,
       CAST(NULL AS INTEGER) AS location_id,
       CAST(NULL AS INTEGER) AS provider_id,
       CAST(NULL AS INTEGER) AS care_site_id,
       a.study_id AS person_source_value,
       a.sex AS gender_source_value,
       0 AS gender_source_concept_id,
       CAST(NULL AS VARCHAR) AS race_source_value,
       0 AS race_source_concept_id,
       CAST(NULL AS VARCHAR) AS ethnicity_source_value,
       0 AS ethnicity_source_concept_id
FROM analysis_patient a
JOIN person_ids p USING (study_id)
LEFT JOIN concept_map g ON g.domain = 'Gender' AND g.source_key = a.sex
ORDER BY p.person_id
