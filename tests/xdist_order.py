"""The order in which ``--dist loadfile`` hands test modules to the xdist workers (issue #16).

xdist's ``loadfile`` hands out modules by number of tests, most first (``--loadscope-reorder``, its
default). Cost does not follow the count: ``test_store_acceptance`` has 8 tests and 51 CPU-s,
``test_fuzz_import`` 3 tests and 22, ``test_stability_properties`` 1 test and 18; they were handed
out among the last, so whether the run ended on one worker still running one of them while the other
had nothing left depended on the rest. Handed out longest first (the "longest processing time" rule)
the last modules are the short ones, and both workers end within seconds of each other (3 s apart in
a two-worker run of the whole suite). A module stays on one worker, so its module fixtures are still
built once.

``MODULE_S`` holds a cost for each module: the mean of its CPU seconds (every process it
starts and reaps included) and its wall seconds, per test, in a three-worker run of the whole suite
(``-p tests.cpu_report``; docs/performance.md, "Test suite, session 11"). CPU alone would put last
the modules that wait on servers and sleeps. Only the order matters, so rough figures do: a module
not in the table counts :data:`DEFAULT_PER_TEST_S` per test, and at least :data:`UNMEASURED_MIN_S`.
``GROUPS`` puts modules that share a session-scoped fixture (the demo store's dashboard of the two
browser modules, tests/dashboard_server.py) on the same worker.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from xdist.scheduler import LoadFileScheduling

DEFAULT_PER_TEST_S = 0.2   # the mean per test of the modules not in the table
# a module not measured yet (a new one) counts at least this much: it goes ahead of the short measured
# modules, so a new long module cannot be the one the run ends on (test_receiver_merge_parts, 1 test
# and 33 CPU-s, was handed out last before it had a figure)
UNMEASURED_MIN_S = 8.0

# module (under tests/) -> seconds: the mean of its CPU seconds and its wall seconds per test in a run
# of the whole suite with three workers on a quiet machine (650b2a4, `-p tests.cpu_report`, session
# 11), the modules the session-11 helpers changed scaled by what they measured saving (the browser
# modules by wall: pages 0.54, browser 0.78, security 0.82; by CPU: AppTest 0.85, store acceptance
# and change times 0.85, fuzz import 0.75, ...); Chromium's renderers are not reaped by the test
# process, so the browser modules' CPU there is low (docs/performance.md, "Browser tests, session 11");
# test_git_stream by its wall (its CPU there was a reaped child's). Every module of that run is here,
# so UNMEASURED_MIN_S applies only to modules added since.
MODULE_S: dict[str, float] = {
    "test_dashboard_apptest.py": 90.3, "test_store_acceptance.py": 76.2, "test_change_times.py": 46.5,
    "test_browser_pages.py": 34.5, "test_dashboard_leader.py": 36.3, "test_browser.py": 30.0,
    "test_browser_security.py": 28.4, "test_import_deployments_stream.py": 16.6,
    "test_stability_properties.py": 16.2, "test_stability.py": 15.2, "test_fuzz_import.py": 13.8,
    "test_github_collector.py": 13.8, "test_receiver_batching.py": 13.7,
    "test_metrics_speed_equivalence.py": 13.7, "test_git_collector.py": 13.6,
    "test_receiver_limits.py": 12.9, "test_attribution_reference.py": 11.9,
    "test_security_inputs.py": 11.7, "test_metrics_speed_transactions.py": 11.4, "test_demo.py": 11.3,
    "test_receiver_payload_file.py": 10.7, "test_listing_incidents.py": 10.3, "test_secrets.py": 10.2,
    "test_webhooks.py": 10.1, "test_receiver_large_bodies.py": 9.8, "test_dashboard_security.py": 9.6,
    "test_reconcilers.py": 9.3, "test_fuzz_webhooks.py": 9.3, "test_readme_commands.py": 8.8,
    "test_metrics_throughput.py": 8.5, "test_dashboard_page_settings.py": 8.0, "test_report.py": 7.9,
    "test_webhook_acceptance.py": 7.7, "test_receiver_memory_spooled.py": 7.5,
    "test_devlake_import.py": 7.4, "test_k8s_collector.py": 7.4, "test_import_jsonl_stream.py": 7.3,
    "test_receiver_memory_pruned.py": 7.2, "test_attribution_loaded_graph_paths.py": 6.9,
    "test_git_speed_load_threads.py": 6.8, "test_cli_tables.py": 6.0,
    "test_receiver_payload_file_hostile.py": 5.7, "test_import_kinds.py": 5.6, "test_import.py": 5.5,
    "test_deploy_multirepo.py": 5.2, "test_store_threads.py": 5.0, "test_git_speed_loaded_nodes.py": 5.0,
    "test_attribution.py": 4.9, "test_changes_audit.py": 4.8, "test_cli_filters.py": 4.8,
    "test_listing_deployments.py": 4.8, "test_gitlab_collector.py": 4.7, "test_pg_server.py": 4.4,
    "test_git_ingest_equivalence.py": 4.4, "test_import_speed_upsert.py": 4.3,
    "test_git_speed_loaded_graph.py": 4.1, "test_demo_speed_ranges.py": 4.0,
    "test_import_streaming.py": 4.0, "test_read_commands.py": 3.7, "test_dashboard_store_replaced.py": 3.7,
    "test_import_speed_sniff.py": 3.6, "test_assess_history.py": 3.6, "test_peers_fourkeys.py": 3.6,
    "test_targets_dashboard.py": 3.5, "test_metrics_speed_lead_epoch.py": 3.3, "test_cli_startup.py": 3.3,
    "test_store_connection_settings.py": 3.3, "test_peers_devlake.py": 3.2, "test_deploy_teams.py": 3.2,
    "test_demo_speed_dump.py": 3.2, "test_git_speed_empty_store.py": 3.1, "test_cli_inprocess.py": 2.8,
    "test_git_speed_head_start.py": 2.8, "test_store_progress_bar.py": 2.8, "test_store_location.py": 2.6,
    "test_maturity_dashboard.py": 2.6, "test_assess.py": 2.5, "test_metrics_merge.py": 2.5,
    "test_store_copy.py": 2.4, "test_assess_evidence.py": 2.3, "test_reconciler_webhooks.py": 2.3,
    "test_k8s_manifests.py": 2.2, "test_cli_help.py": 2.2, "test_git_speed_literals.py": 2.1,
    "test_crosscheck_revlist.py": 2.1, "test_store_basics.py": 2.0, "test_receiver_merge_parts.py": 2.0,
    "test_listing_formats.py": 2.0, "test_peers_pelorus.py": 1.9, "test_peers_middleware.py": 1.8,
    "test_revert_prefix.py": 1.8, "test_git_speed_tail.py": 1.8, "test_receiver_rows_one_pass.py": 1.8,
    "test_targets_report.py": 1.7, "test_pr_lead_time.py": 1.7, "test_import_deployments_pairs.py": 1.7,
    "test_git_speed_commit_check.py": 1.5, "test_import_layers.py": 1.4, "test_git_stream.py": 1.3,
    "test_rework_pattern.py": 1.2, "test_stability_acceptance.py": 1.2, "test_maturity_issue14.py": 1.1,
    "test_install_lock.py": 1.1, "test_assess_store_batch.py": 1.1, "test_attribution_temp_table.py": 1.1,
    "test_store_speed_dimension_check.py": 1.0, "test_attribution_speed_warnings.py": 1.0,
    "test_metrics_baselines.py": 0.9, "test_store_speed_lean_merge.py": 0.9,
    "test_metrics_instants.py": 0.8, "test_receiver_stale_spools.py": 0.8, "test_revisions.py": 0.7,
    "test_store_schema_check.py": 0.7, "test_metrics_speed_pr_teams.py": 0.7,
    "test_store_dimension_races.py": 0.6, "test_assess_demo.py": 0.5,
    "test_assess_collected_moments.py": 0.4, "test_maturity_environments.py": 0.3,
    "test_timestamps_out_of_range.py": 0.2, "test_pr_phases.py": 0.2, "test_maturity_lines.py": 0.1,
    "test_benchmarks.py": 0.1, "test_import_parse.py": 0.1, "test_config.py": 0.1,
    "test_assess_model.py": 0.1, "test_progress_lines.py": 0.1, "test_import_speed_strip.py": 0.1,
}

# module -> the scope it is scheduled with (modules sharing session fixtures)
GROUPS: dict[str, str] = {
    "tests/test_browser.py": "tests/test_browser.py+test_browser_pages.py",
    "tests/test_browser_pages.py": "tests/test_browser.py+test_browser_pages.py",
}


class CostOrderedLoadFile(LoadFileScheduling):
    """``--dist loadfile``, modules (or groups of modules) handed out costliest first."""

    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        self._ordered = False

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return GROUPS.get(module, module)

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:  # the first hand-out, right after the queue is built from the collection
            self._ordered = True
            units = sorted(self.workqueue.items(), key=lambda unit: -scope_cost(unit[0], unit[1]))
            self.workqueue = OrderedDict(units)
        super()._assign_work_unit(node)


def scope_cost(scope: str, tests: dict[str, bool]) -> float:
    """Estimated CPU seconds of a scope: its modules' measured figures, else a default per test."""
    modules = {nodeid.split("::", 1)[0] for nodeid in tests}
    per_module = {m: sum(1 for t in tests if t.split("::", 1)[0] == m) for m in modules}
    return sum(MODULE_S.get(m.removeprefix("tests/"), max(UNMEASURED_MIN_S, DEFAULT_PER_TEST_S * n))
               for m, n in per_module.items())
