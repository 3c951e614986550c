-- Incidents keyed on the time they began (created_at in the window), grouped by the incident's own
-- service and environment (team from the service; repository from the attributed deployment).
-- time_to_restore is the pre-2023 DORA definition: resolved_at - created_at of each resolved
-- incident created in the window; open incidents are counted, not measured.
-- fact: incident_attribution
-- time: created_at
-- zero: incidents, unattributed_incidents, open_incidents
-- note: incidents, unattributed_incidents, open_incidents and time_to_restore_median_hours count incidents created in the window, by the incident's own service and environment
SELECT {group_keys},
       count(*) AS incidents,
       count(*) FILTER (WHERE attribution_rule = 'unattributed') AS unattributed_incidents,
       count(*) FILTER (WHERE is_open) AS open_incidents,
       median(restore_hours) AS time_to_restore_median_hours
FROM scoped
GROUP BY {group_keys};
