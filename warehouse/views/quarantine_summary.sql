-- quarantine_summary: data-quality findings by site and rule, for the data managers.
-- Grain: one row per (site, rule, severity). Source: quarantine.
-- A rule's Kahn category and meaning are in schemas/checks.csv.
-- Columns:
--   site_id: Center identifier from carpool.yml.
--   rule_id: Check catalog rule (schemas/checks.csv).
--   severity: error (quarantined) or warning (loaded, flagged).
--   findings: Quarantine records for this site, rule and severity.
--   source_rows: Distinct export rows (file and row) those records point at.
--   example_message: One of the messages, as an example (the alphabetically first).
SELECT site_id, rule_id, severity, count(*) AS findings,
       count(DISTINCT source_file || ':' || CAST(source_row AS VARCHAR)) AS source_rows,
       min(message) AS example_message
FROM quarantine
GROUP BY site_id, rule_id, severity
ORDER BY site_id, severity, findings DESC, rule_id
