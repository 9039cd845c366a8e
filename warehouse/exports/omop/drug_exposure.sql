-- drug_exposure: OMOP CDM v5.4 DRUG_EXPOSURE, one row per course of a drug for CRS/ICANS.
-- Sources: toxicity_treatment, concept_map. Agents map to RxNorm ingredients.
SELECT CAST(row_number() OVER (ORDER BY p.person_id, t.start_date, t.agent) AS INTEGER) AS drug_exposure_id,
       p.person_id,
       coalesce(m.concept_id, 0) AS drug_concept_id,
       t.start_date AS drug_exposure_start_date,
       CAST(t.start_date AS TIMESTAMP) AS drug_exposure_start_datetime,
       coalesce(t.end_date, t.start_date) AS drug_exposure_end_date,
       CAST(coalesce(t.end_date, t.start_date) AS TIMESTAMP) AS drug_exposure_end_datetime,
       t.end_date AS verbatim_end_date,
       (SELECT concept_id FROM concept_map WHERE domain = 'Type Concept' AND source_key = 'EHR')
           AS drug_type_concept_id,
       CAST(NULL AS VARCHAR) AS stop_reason,
       CAST(NULL AS INTEGER) AS refills,
       t.cumulative_dose_mg AS quantity,
       CAST(NULL AS INTEGER) AS days_supply,
       CASE WHEN t.cumulative_dose_mg IS NOT NULL THEN 'cumulative dose, mg' END AS sig,
       0 AS route_concept_id,
       CAST(NULL AS VARCHAR) AS lot_number,
       CAST(NULL AS INTEGER) AS provider_id,
       CAST(NULL AS INTEGER) AS visit_occurrence_id,
       CAST(NULL AS INTEGER) AS visit_detail_id,
       t.agent AS drug_source_value,
       0 AS drug_source_concept_id,
       CAST(NULL AS VARCHAR) AS route_source_value,
       CAST(NULL AS VARCHAR) AS dose_unit_source_value
FROM toxicity_treatment t
JOIN person_ids p USING (study_id)
LEFT JOIN concept_map m ON m.domain = 'Drug' AND m.source_key = t.agent
ORDER BY drug_exposure_id
