-- site_summary: what each center contributed to the latest refresh.
-- Grain: one row per site. Sources: etl_file, quarantine, patient.
-- patients_loaded counts validated patients in the warehouse; rows_* reconcile per file
-- (rows_read = rows_loaded + rows_quarantined); errors/warnings count quarantine records.
-- Columns:
--   site_id: Center identifier from carpool.yml.
--   patients_loaded: Validated patients of the site in the warehouse.
--   files: Export files (and sheets) read for the site.
--   rows_read: Data rows read from those files.
--   rows_loaded: Rows fully loaded.
--   rows_quarantined: Rows with at least one quarantined part (rows_read = rows_loaded + rows_quarantined).
--   errors: Quarantine records of severity error (the row or patient was not loaded).
--   warnings: Quarantine records of severity warning (loaded, flagged).
WITH files AS (
    SELECT site_id, count(*) AS files, CAST(sum(rows_read) AS INTEGER) AS rows_read,
           CAST(sum(rows_loaded) AS INTEGER) AS rows_loaded, CAST(sum(rows_quarantined) AS INTEGER) AS rows_quarantined
    FROM etl_file
    GROUP BY site_id
),
findings AS (
    SELECT site_id,
           count(*) FILTER (WHERE severity = 'error') AS errors,
           count(*) FILTER (WHERE severity = 'warning') AS warnings
    FROM quarantine
    GROUP BY site_id
),
patients AS (
    SELECT site_id, count(*) AS patients_loaded FROM patient GROUP BY site_id
)
SELECT f.site_id, coalesce(p.patients_loaded, 0) AS patients_loaded, f.files, f.rows_read,
       f.rows_loaded, f.rows_quarantined, coalesce(q.errors, 0) AS errors, coalesce(q.warnings, 0) AS warnings
FROM files f
LEFT JOIN findings q USING (site_id)
LEFT JOIN patients p USING (site_id)
ORDER BY f.site_id
