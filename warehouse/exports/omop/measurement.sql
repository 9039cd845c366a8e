-- measurement: OMOP CDM v5.4 MEASUREMENT, one row per lab result.
-- Sources: lab, codelist_analyte, concept_map. Analytes map to LOINC, units to UCUM; the
-- value is in the analyte's canonical unit (codelist_analyte.unit).
SELECT CAST(row_number() OVER (ORDER BY p.person_id, l.sample_date, l.analyte) AS INTEGER) AS measurement_id,
       p.person_id,
       coalesce(m.concept_id, 0) AS measurement_concept_id,
       l.sample_date AS measurement_date,
       CAST(l.sample_date AS TIMESTAMP) AS measurement_datetime,
       CAST(NULL AS VARCHAR) AS measurement_time,
       (SELECT concept_id FROM concept_map WHERE domain = 'Type Concept' AND source_key = 'EHR')
           AS measurement_type_concept_id,
       0 AS operator_concept_id,
       l.value AS value_as_number,
       0 AS value_as_concept_id,
       coalesce(u.concept_id, 0) AS unit_concept_id,
       CAST(NULL AS DOUBLE) AS range_low,
       CAST(NULL AS DOUBLE) AS range_high,
       CAST(NULL AS INTEGER) AS provider_id,
       CAST(NULL AS INTEGER) AS visit_occurrence_id,
       CAST(NULL AS INTEGER) AS visit_detail_id,
       coalesce(m.concept_code, l.analyte) AS measurement_source_value,
       0 AS measurement_source_concept_id,
       u.concept_code AS unit_source_value,
       0 AS unit_source_concept_id,
       l.source_value AS value_source_value,
       CAST(NULL AS INTEGER) AS measurement_event_id,
       0 AS meas_event_field_concept_id
FROM lab l
JOIN person_ids p USING (study_id)
JOIN codelist_analyte a ON a.code = l.analyte
LEFT JOIN concept_map m ON m.domain = 'Measurement' AND m.source_key = l.analyte
LEFT JOIN concept_map u ON u.domain = 'Unit' AND u.source_key = a.unit
ORDER BY measurement_id
