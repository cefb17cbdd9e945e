-- The default page classes, seeded only into an empty table so your own rows are kept.
-- The same rows as sql/bigquery/page_classes.sql.
INSERT INTO page_classes (pageClass, pattern)
SELECT pageClass, pattern FROM (
  SELECT 'pricing' AS pageClass, '/pricing%' AS pattern UNION ALL
  SELECT 'pricing', '/plans%' UNION ALL
  SELECT 'case_study', '/case-studies%' UNION ALL
  SELECT 'case_study', '/customers%' UNION ALL
  SELECT 'product', '/product%' UNION ALL
  SELECT 'product', '/features%'
)
WHERE NOT EXISTS (SELECT 1 FROM page_classes);
