{{ config(materialized='table', order_by='(source, source_category)') }}
-- The category taxonomy file: every source label mapped to Stir's categories. Copied into a
-- table at build time, so marts never read S3 and one bad upload cannot break a read.
select distinct
    toLowCardinality(lower(trimBoth(source))) as source,
    trimBoth(source_category) as source_category,
    toLowCardinality(lower(trimBoth(category))) as category,
    toLowCardinality(lower(trimBoth(category_group))) as category_group
from {{ s3_drop('taxonomy/categories.csv', structure='source String, source_category String, category String, category_group String') }}
