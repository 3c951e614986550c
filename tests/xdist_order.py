"""The order in which ``--dist loadfile`` hands test modules to the xdist workers (issue #16).

xdist's ``loadfile`` hands out modules by number of tests, most first (``--loadscope-reorder``, its
default). Cost does not follow the count: ``test_store_acceptance`` has 8 tests and 51 CPU-s,
``test_fuzz_import`` 3 tests and 22, ``test_stability_properties`` 1 test and 18; they were handed
out among the last, so whether the run ended on one worker still running one of them while the other
had nothing left depended on the rest. Handed out longest first (the "longest processing time" rule)
the last modules are the short ones, and both workers end within seconds of each other (3 s apart in
a two-worker run of the whole suite). A module stays on one worker, so its module fixtures are still
built once.

``MODULE_S`` holds a cost for each costly module: the mean of its CPU seconds (every process it
starts included) and its wall seconds, measured in one process (``-n 0``; docs/performance.md,
"Test suite, session 9 (helper H4)"). CPU alone would put last the modules that wait on servers
and sleeps. Only the order matters, so rough figures do: a module not in the table counts
:data:`DEFAULT_PER_TEST_S` per test, and at least :data:`UNMEASURED_MIN_S`. ``GROUPS`` puts modules
that share a session-scoped fixture (the demo store's dashboard of the two browser modules,
tests/dashboard_server.py) on the same worker.
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

# module (under tests/) -> seconds: the mean of its CPU seconds and its wall seconds in a run of the
# whole suite in one process at a load average of 4-10 (40a18c9, GITOPS_DORA_DUCKDB_THREADS=1)
MODULE_S: dict[str, float] = {
    "test_store_acceptance.py": 45.2, "test_browser_pages.py": 76, "test_dashboard_apptest.py": 74,
    "test_readme_commands.py": 8.7, "test_dashboard_leader.py": 32, "test_stability.py": 20.4,
    "test_receiver_limits.py": 21, "test_browser.py": 37, "test_browser_security.py": 36,
    "test_stability_properties.py": 16.1, "test_receiver_batching.py": 20, "test_fuzz_import.py": 27.6,
    "test_import_deployments_stream.py": 17.9, "test_security_inputs.py": 17,
    "test_receiver_large_bodies.py": 17, "test_reconcilers.py": 19, "test_listing_incidents.py": 8.7,
    "test_receiver_memory_pruned.py": 14, "test_dashboard_security.py": 12, "test_report.py": 7.6,
    "test_secrets.py": 13, "test_metrics_speed_equivalence.py": 18, "test_demo.py": 18,
    "test_webhook_acceptance.py": 20, "test_git_collector.py": 18, "test_github_collector.py": 21,
    "test_webhooks.py": 17, "test_receiver_memory_spooled.py": 14, "test_import_speed_upsert.py": 5.2,
    "test_fuzz_webhooks.py": 19, "test_import_jsonl_stream.py": 9.9, "test_listing_deployments.py": 4.6,
    "test_metrics_speed_transactions.py": 10, "test_read_commands.py": 10, "test_k8s_collector.py": 8,
    "test_attribution_reference.py": 10, "test_import_streaming.py": 5.0, "test_store_threads.py": 9,
    "test_devlake_import.py": 8, "test_reconciler_webhooks.py": 4, "test_pg_server.py": 8,
    "test_metrics_throughput.py": 8, "test_import.py": 8, "test_git_speed_load_threads.py": 8,
    "test_import_kinds.py": 7.2, "test_deploy_multirepo.py": 7, "test_listing_formats.py": 1.6,
    "test_git_ingest_equivalence.py": 7, "test_cli_tables.py": 7, "test_changes_audit.py": 6,
    "test_gitlab_collector.py": 7, "test_revert_prefix.py": 5, "test_targets_dashboard.py": 5,
    "test_pr_lead_time.py": 5, "test_cli_help.py": 4, "test_cli_startup.py": 6,
    "test_cli_filters.py": 5, "test_attribution.py": 5, "test_crosscheck_revlist.py": 3,
    "test_store_connection_settings.py": 3.3, "test_demo_speed_dump.py": 5,
    "test_import_deployments_pairs.py": 2.4, "test_store_progress_bar.py": 4,
    "test_git_speed_head_start.py": 4, "test_maturity_dashboard.py": 3.5,
    # added since, measured the same way in a two-worker run of 99ffe71 (load 6-12)
    "test_change_times.py": 36, "test_receiver_merge_parts.py": 5, "test_receiver_payload_file.py": 24,
    "test_git_speed_tail.py": 5, "test_receiver_rows_one_pass.py": 4,
    # session 10: the helpers' serial runs of their modules after their changes (load 2-11; the
    # figures above for the modules they changed were replaced the same way)
    "test_receiver_payload_file_hostile.py": 12, "test_receiver_stale_spools.py": 3,
    "test_git_stream.py": 0.3, "test_store_copy.py": 3, "test_attribution_loaded_graph_paths.py": 17,
    "test_dashboard_store_replaced.py": 5,
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
