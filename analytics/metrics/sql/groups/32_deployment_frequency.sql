-- Deployment frequency as the DORA survey asked it, for the benchmark rating
-- (analytics/metrics/ratings.py): the median number of deployment days per week, counting weeks
-- without deployments as 0, and the median number of deployments per month.
-- Weeks are the whole 7-day blocks from the period start ([start + 7k days, start + 7(k+1) days)
-- ending inside the period); months are whole 30-day blocks the same way. A period shorter than
-- one block uses its own rate scaled to the block (days * 7 / period_days).
-- Only successful deployments count, redeploys as configured (as for deployments and deployment_days).
-- fact: deployment_times
-- time: deployed_at
-- note: deployment_days_per_week_median counts whole 7-day blocks from the period start, weeks without deployments as 0 (the deployment frequency rating uses it)
WITH successful_deployments AS (
    SELECT *,
           CAST(floor((epoch_seconds(deployed_at) - epoch_seconds(period_start)) / (7 * 86400)) AS INTEGER) AS week_block,
           CAST(floor((epoch_seconds(deployed_at) - epoch_seconds(period_start)) / (30 * 86400)) AS INTEGER) AS month_block,
           CAST(floor(period_days / 7) AS INTEGER) AS whole_weeks,
           CAST(floor(period_days / 30) AS INTEGER) AS whole_months
    FROM scoped
    WHERE counts_as_deployment
),
block_counts AS (
    -- grouped by the dimensions and period_index only ({group_keys}: cheaper than also grouping by
    -- the TIMESTAMPTZ and DOUBLE period columns, which depend on period_index), period_days carried
    -- along with any_value.
    -- deployment days in each whole week that had any
    SELECT {group_keys}, any_value(period_days) AS period_days, 'week_days' AS measure,
           CAST(count(DISTINCT deployed_day) AS DOUBLE) AS value
    FROM successful_deployments
    WHERE week_block < whole_weeks
    GROUP BY {group_keys}, week_block
    UNION ALL
    -- deployments in each whole month that had any
    SELECT {group_keys}, any_value(period_days), 'month_deployments', CAST(count(*) AS DOUBLE)
    FROM successful_deployments
    WHERE month_block < whole_months
    GROUP BY {group_keys}, month_block
    UNION ALL
    SELECT {group_keys}, any_value(period_days), 'period_days_deployed', CAST(count(DISTINCT deployed_day) AS DOUBLE)
    FROM successful_deployments
    GROUP BY {group_keys}
    UNION ALL
    SELECT {group_keys}, any_value(period_days), 'period_deployments', CAST(count(*) AS DOUBLE)
    FROM successful_deployments
    GROUP BY {group_keys}
),
counts_per_group AS (
    SELECT {group_keys},
           any_value(period_days) AS period_days,
           coalesce(list(value) FILTER (WHERE measure = 'week_days'), []) AS week_days,
           coalesce(list(value) FILTER (WHERE measure = 'month_deployments'), []) AS month_deployments,
           sum(value) FILTER (WHERE measure = 'period_days_deployed') AS days_deployed,
           sum(value) FILTER (WHERE measure = 'period_deployments') AS deployments
    FROM block_counts
    GROUP BY {group_keys}
),
calendar_padded AS (
    -- add a 0 for every whole week / month without deployments
    SELECT {group_keys},
           period_days,
           CAST(floor(period_days / 7) AS INTEGER) AS whole_weeks,
           CAST(floor(period_days / 30) AS INTEGER) AS whole_months,
           list_concat(week_days, list_transform(range(CAST(floor(period_days / 7) AS INTEGER) - len(week_days)),
                                                 lambda x: 0.0)) AS week_days_all,
           list_concat(month_deployments, list_transform(range(CAST(floor(period_days / 30) AS INTEGER)
                                                               - len(month_deployments)), lambda x: 0.0)) AS months_all,
           days_deployed,
           deployments
    FROM counts_per_group
)
SELECT {group_keys},
       CASE WHEN whole_weeks >= 1 THEN list_aggregate(week_days_all, 'median')
            ELSE days_deployed * 7.0 / period_days END AS deployment_days_per_week_median,
       CASE WHEN whole_months >= 1 THEN list_aggregate(months_all, 'median')
            ELSE deployments * 30.0 / period_days END AS deployments_per_month_median,
       deployments * 180.0 / period_days AS deployments_per_six_months
FROM calendar_padded;
