"""Computing the default Overview in the background whenever a new snapshot is published.

The engine needs seconds at scale, and a collection publishes a new snapshot every run. Starting
the default view's computation as soon as the server sees a new snapshot means the first person to
open the dashboard after a collection usually finds it ready (they wait for the rest otherwise;
the result cache makes them share the one computation).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from dashboards.filters import Filters, default_window
from dashboards.metrics_source import MetricsRequest, MetricsUnavailable, metrics, request_for
from dashboards.source import data_stamp, reader

WARMUP_ENV = "GITOPS_DORA_WARMUP"  # set by `gitops-dora dashboard`
_seen: set[tuple[str, int]] = set()
_lock = threading.Lock()
log = logging.getLogger("gitops_dora.dashboard")


def _newest_deployment_day(db: Path) -> datetime | None:
    with reader(db) as con:
        row = con.execute("SELECT max(deployed_at) FROM deployments").fetchone()
    return row[0] if row else None


def overview_requests(f: Filters) -> list[MetricsRequest]:
    """The engine requests the Overview makes for these filters, in the order it makes them."""
    return [
        request_for(f, compare_previous=True, pooled=True),
        request_for(f, compare_previous=True),
        request_for(f, trend="week", pooled=True),
        request_for(f, group_by=("environment",), trend="week"),
    ]


def _work(db: Path) -> None:
    try:
        import plotly.express  # noqa: F401 - the first page view would otherwise pay this import
        newest = _newest_deployment_day(db)
        if newest is None:
            return
        since, until = default_window(newest.astimezone(UTC).date(), datetime.now(UTC).date())
        for req in overview_requests(Filters(since, until)):
            with contextlib.suppress(MetricsUnavailable):  # the page shows the reason when opened
                metrics(db, req)
    except MetricsUnavailable:
        pass  # the page shows the reason when someone opens it
    except Exception:  # noqa: BLE001 - a warm-up must never take the server down
        log.exception("warming the default view failed")


def warm_default_view(db: Path) -> bool:
    """Start the warm-up for the current snapshot once; True when a thread was started."""
    stamp = data_stamp(db)
    key = (str(db), stamp)
    with _lock:
        if stamp == 0 or key in _seen:
            return False
        _seen.add(key)
    threading.Thread(target=_work, args=(db,), name="gitops-dora-warmup", daemon=True).start()
    return True
