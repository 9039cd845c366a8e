-- quarantine_summary: data-quality findings by site and rule, for the data managers.
-- Grain: one row per (site, rule, severity). Source: quarantine.
-- A rule's Kahn category and meaning are in schemas/checks.csv.
SELECT site_id, rule_id, severity, count(*) AS findings,
       count(DISTINCT source_file || ':' || CAST(source_row AS VARCHAR)) AS source_rows,
       min(message) AS example_message
FROM quarantine
GROUP BY site_id, rule_id, severity
ORDER BY site_id, severity, findings DESC, rule_id
