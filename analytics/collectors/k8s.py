"""Reading Argo CD and Flux state from a cluster with the official kubernetes client.

``collect`` lists Applications, Kustomizations, HelmReleases and core/v1 Events (following
``continue`` tokens) and stores them in one transaction. ``Watcher`` lists first, then watches
each resource from the list's resourceVersion: BOOKMARKs advance it, a 410 Gone relists, a dropped
connection reconnects with backoff. Watch threads only read; one writer (the caller's thread)
commits a batch before it counts as acknowledged, so a stop (SIGTERM) loses nothing acknowledged
and a relist re-delivers nothing twice (event ids are natural keys, inserted only once).

The API server is a source like any other, so its answers are bounded: every request has a connect
and a read timeout, a list page is read in pieces up to a cap, a repeated ``continue`` token
stops the list, a 429 is retried only as often and as long as ``Retry-After`` allows within a small
budget, and a watch that ends at once without events waits the reconnect backoff. The connection
itself (the kubeconfig, its context and credentials) is :mod:`analytics.collectors.kubeconfig`'s.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from analytics.collectors.kubeconfig import first_line
from analytics.collectors.reconciler_input import collect_objects, is_reconciler_event
from analytics.config import Config
from analytics.deployments.from_reconcilers import DeriveSummary, store_collected
from analytics.errors import SourceError
from analytics.store.connection import WriteSession, write_unit
from analytics.store.location import StoreRef

PAGE_SIZE = 250
WATCH_TIMEOUT_SECONDS = 300
MAX_BACKOFF_SECONDS = 30.0

# Seconds without a byte before a request counts as stalled (also the connect timeout). The API
# server ends an ordinary request itself after 60 s (kube-apiserver --request-timeout), so a
# healthy server has answered or failed by then; tests set it to about a second.
TIMEOUT_ENV = "GITOPS_DORA_K8S_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 60.0
# The timeoutSeconds a watch asks for. The server must end the watch then, so a watch silent for
# this plus the timeout above is stalled, never merely quiet.
WATCH_SECONDS_ENV = "GITOPS_DORA_K8S_WATCH_SECONDS"
# One list page is at most PAGE_SIZE objects and etcd stores at most 1.5 MiB an object (its default
# --max-request-bytes), so a real page is under 375 MiB; 512 MiB (the import file limit too) never
# refuses a real cluster and stops an endless body long before it exhausts memory.
MAX_PAGE_BYTES_ENV = "GITOPS_DORA_K8S_MAX_PAGE_BYTES"
MAX_PAGE_BYTES = 512 * 1024 * 1024
READ_PIECE_BYTES = 1024 * 1024
# 429 Too Many Requests (API Priority and Fairness): at most this many tries of one request and
# this many seconds of waiting in all, as Retry-After asks; a scheduled run then fails clearly
# instead of queueing behind a throttled server for ever.
THROTTLE_TRIES = 3
THROTTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Limits:
    """The bounds every request to the API server is held to (see the constants above)."""

    timeout: float = DEFAULT_TIMEOUT_SECONDS
    watch_seconds: int = WATCH_TIMEOUT_SECONDS
    max_page_bytes: int = MAX_PAGE_BYTES

    @classmethod
    def from_env(cls) -> Limits:
        """Read when a collection starts, so a test or an operator can tighten them per run."""
        timeout = _env_number(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS)
        watch_seconds = int(_env_number(WATCH_SECONDS_ENV, WATCH_TIMEOUT_SECONDS))
        max_page = int(_env_number(MAX_PAGE_BYTES_ENV, MAX_PAGE_BYTES))
        return cls(timeout, max(1, watch_seconds), max_page)

    @property
    def list_timeout(self) -> tuple[float, float]:
        return (self.timeout, self.timeout)

    @property
    def watch_timeout(self) -> tuple[float, float]:
        return (self.timeout, self.watch_seconds + self.timeout)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SourceError(f"{name} must be a positive number, not {raw!r}")
    return value


@dataclass(frozen=True)
class Resource:
    """One listable/watchable collection; ``group`` empty means core/v1 Events."""

    group: str
    version: str
    plural: str
    namespace: str | None = None  # None: all namespaces

    @property
    def name(self) -> str:
        base = f"{self.plural}.{self.group}" if self.group else self.plural
        return f"{base} in {self.namespace}" if self.namespace else base

    def scoped(self, namespace: str | None) -> Resource:
        return Resource(self.group, self.version, self.plural, namespace)


def resources(namespaces: list[str]) -> list[Resource]:
    """Every resource in every namespace asked for (all namespaces when none are)."""
    scopes: list[str | None] = list(namespaces) or [None]
    return [r.scoped(ns) for ns in scopes for r in RESOURCES]


RESOURCES = (
    Resource("argoproj.io", "v1alpha1", "applications"),
    Resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    Resource("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    Resource("", "v1", "events"),
)



class Cluster:
    """List and watch calls for the resources, returning raw JSON exactly as the API sends it."""

    def __init__(self, client: Any, limits: Limits | None = None) -> None:
        from kubernetes import client as k8s

        self.custom = k8s.CustomObjectsApi(client)
        self.core = k8s.CoreV1Api(client)
        self.limits = limits or Limits.from_env()

    def _call(self, resource: Resource) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if not resource.group:
            if resource.namespace:
                return self.core.list_namespaced_event, (resource.namespace,)
            return self.core.list_event_for_all_namespaces, ()
        if resource.namespace:
            return self.custom.list_namespaced_custom_object, (
                resource.group,
                resource.version,
                resource.namespace,
                resource.plural,
            )
        return self.custom.list_cluster_custom_object, (resource.group, resource.version, resource.plural)

    def list(self, resource: Resource) -> tuple[list[dict[str, Any]], str]:
        """All items (every page) and the resourceVersion to watch from."""
        func, args = self._call(resource)
        items: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        version = ""
        while True:
            kwargs: dict[str, Any] = {
                "limit": PAGE_SIZE,
                "_preload_content": False,
                "_request_timeout": self.limits.list_timeout,
            }
            if token:
                kwargs["_continue"] = token
            doc = self._page(resource, func, args, kwargs)
            page = [item for item in _list_of(doc.get("items")) if isinstance(item, dict)]
            _check_text(resource, page)
            for item in page:
                item.setdefault("apiVersion", _item_api_version(resource))
                item.setdefault("kind", _item_kind(resource, doc))
                items.append(item)
            meta = doc.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            version = str(meta.get("resourceVersion") or version)
            token = str(meta.get("continue") or "") or None
            if not token:
                return items, version
            if token in seen:  # the server is paging in a circle: it would never end
                raise _failed(resource, "the server repeated a continue token it had sent before")
            seen.add(token)

    def _page(
        self, resource: Resource, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """One page, retried on 429 as Retry-After asks within THROTTLE_TRIES / THROTTLE_SECONDS."""
        waited = 0.0
        for attempt in range(1, THROTTLE_TRIES + 1):
            try:
                response = func(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - ApiException or a connection error
                if timed_out(exc):
                    raise self._timed_out(resource) from None
                if getattr(exc, "status", None) != 429:
                    raise
                delay = _retry_after(exc)
                if waited + delay > THROTTLE_SECONDS:
                    raise _failed(
                        resource,
                        f"HTTP 429 Too Many Requests (Retry-After {delay:g} s would pass the "
                        f"{THROTTLE_SECONDS:g} s a request waits in all)",
                    ) from None
                if attempt == THROTTLE_TRIES:
                    raise _failed(
                        resource,
                        f"HTTP 429 Too Many Requests (still throttled after {attempt} tries "
                        f"and {waited:g} s of waiting)",
                    ) from None
                time.sleep(delay)
                waited += delay
                continue
            try:
                return self._read_doc(resource, response)
            except SourceError:
                raise
            except Exception as exc:  # noqa: BLE001 - urllib3 read errors
                if timed_out(exc):
                    raise self._timed_out(resource) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _timed_out(self, resource: Resource) -> SourceError:
        return _failed(resource, f"timed out (nothing received for {self.limits.timeout:g} s)")

    def _read_doc(self, resource: Resource, response: Any) -> dict[str, Any]:
        """The body in pieces, refused past the cap before it can exhaust memory."""
        cap = self.limits.max_page_bytes
        declared = str(response.headers.get("Content-Length") or "")
        if declared.isdigit() and int(declared) > cap:
            response.close()
            raise _failed(resource, f"the answer is larger than {_size(cap)} ({_size(int(declared))})")
        pieces: list[bytes] = []
        total = 0
        try:
            for piece in response.stream(READ_PIECE_BYTES):
                total += len(piece)
                if total > cap:
                    raise _failed(resource, f"the answer is larger than {_size(cap)}; refused")
                pieces.append(piece)
        finally:
            response.close()  # not back to the pool: a refused body may still be arriving
            response.release_conn()
        try:
            doc = json.loads(b"".join(pieces))
        except RecursionError:
            raise _failed(resource, "the answer is nested too deeply") from None
        except ValueError:
            raise _failed(resource, "the answer is not JSON") from None
        if not isinstance(doc, dict):
            raise _failed(resource, "the answer is not a Kubernetes list")
        return doc

    def watch(self, resource: Resource, version: str, watcher: Any) -> Iterator[dict[str, Any]]:
        func, args = self._call(resource)
        yield from watcher.stream(
            func,
            *args,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.limits.watch_seconds,
            _request_timeout=self.limits.watch_timeout,
        )


def _list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def _retry_after(exc: Exception) -> float:
    """Seconds Retry-After asks for (a date or nonsense counts as one second)."""
    headers = getattr(exc, "headers", None) or {}
    raw = str(headers.get("Retry-After") or "").strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


def _check_text(resource: Resource, items: list[dict[str, Any]]) -> None:
    """The import's check (analytics.storable_values): a lone UTF-16 surrogate, which a JSON
    escape can produce and the store cannot hold, a NUL, or nesting past its limit refuses the list."""
    from analytics.storable_values import check_values

    check_values(f"kubernetes API: {resource.name}", items)


def timed_out(exc: BaseException) -> bool:
    """A connect or read timeout, however urllib3 wrapped it."""
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    reason = getattr(exc, "reason", None)
    return isinstance(exc, TimeoutError | Urllib3Timeout) or isinstance(reason, TimeoutError | Urllib3Timeout)


def _failed(resource: Resource, why: str) -> SourceError:
    return SourceError(f"kubernetes API: listing {resource.name} failed: {why}")


def _item_api_version(resource: Resource) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else "v1"


def _item_kind(resource: Resource, doc: dict[str, Any]) -> str:
    kind = str(doc.get("kind") or "")
    if kind.endswith("List"):
        return kind[: -len("List")]
    return {
        "applications": "Application",
        "kustomizations": "Kustomization",
        "helmreleases": "HelmRelease",
        "events": "Event",
    }[resource.plural]


def _not_installed(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def relevant(resource: Resource, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events from other controllers are dropped before they reach the store."""
    if resource.group:
        return items
    return [e for e in items if is_reconciler_event(e)]


def list_all(
    cluster: Cluster, scope: list[Resource], notes: list[str]
) -> tuple[list[dict[str, Any]], dict[Resource, str]]:
    objects: list[dict[str, Any]] = []
    versions: dict[Resource, str] = {}
    for resource in scope:
        try:
            items, version = cluster.list(resource)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - ApiException or a connection error
            if _not_installed(exc):
                notes.append(f"{resource.name} not served by this cluster; skipped")
                continue
            raise _source_error(resource, exc) from None
        objects.extend(relevant(resource, items))
        versions[resource] = version
    return objects, versions


def _source_error(resource: Resource, exc: Exception) -> SourceError:
    """One line: the status and reason phrase, never the headers and body ApiException prints."""
    if isinstance(exc, SourceError):
        return exc
    if timed_out(exc):
        return _failed(resource, "timed out")
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if not isinstance(reason, str) or not reason.strip():
        reason = first_line(exc)
    code = f"HTTP {status} " if status else ""
    return _failed(resource, f"{code}{reason.splitlines()[0] if reason.strip() else ''}".strip())


def collect(
    db_path: StoreRef, config: Config, client: Any, namespaces: list[str], target: str
) -> tuple[DeriveSummary, list[str]]:
    """One list of every resource, stored in one transaction."""
    cluster = Cluster(client)
    notes: list[str] = []
    objects, versions = list_all(cluster, resources(namespaces), notes)
    collected = collect_objects(objects, config, "cluster")

    def work(session: WriteSession) -> DeriveSummary:
        summary = store_collected(session, config, collected)
        for resource, version in versions.items():
            session.set_state(f"k8s:{target}", f"rv:{resource.name}", version)
        session.messages.append(summary.line())
        return summary

    return write_unit(db_path, work, source="k8s", target=target), notes


@dataclass
class _Item:
    kind: str  # objects | version | error
    resource: Resource
    objects: list[dict[str, Any]] = field(default_factory=list)
    version: str = ""
    message: str = ""


@dataclass
class WatchStats:
    batches: int = 0
    objects: int = 0
    relists: int = 0
    reconnects: int = 0
    events: int = 0
    deployments: int = 0


class Watcher:
    """List, then watch every resource until ``stop`` is set; commits in batches."""

    def __init__(
        self,
        db_path: StoreRef,
        config: Config,
        client: Any,
        namespaces: list[str],
        target: str,
        *,
        batch_seconds: float = 1.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.db_path = db_path
        self.config = config
        self.cluster = Cluster(client)
        self.scope = resources(namespaces)
        self.target = target
        self.batch_seconds = batch_seconds
        self.stop = threading.Event()
        self.items: queue.Queue[_Item] = queue.Queue()
        self.stats = WatchStats()
        self.say = say or (lambda _m: None)
        self._streams: list[Any] = []
        self._lock = threading.Lock()

    def request_stop(self) -> None:
        """Safe from a signal handler: wakes the writer and closes open watch connections."""
        self.stop.set()
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.stop()

    def run(self) -> WatchStats:
        notes: list[str] = []
        objects, versions = list_all(self.cluster, self.scope, notes)
        for note in notes:
            self.say(f"note: {note}")
        self._write(objects, versions)
        threads = [
            threading.Thread(
                target=self._watch_loop, args=(resource, version), daemon=True, name=f"watch-{resource.name}"
            )
            for resource, version in versions.items()
        ]
        for thread in threads:
            thread.start()
        self.say(f"watching {', '.join(r.name for r in versions)} (SIGTERM or Ctrl-C stops)")
        while not self.stop.is_set():
            self._drain(wait=self.batch_seconds)
        for thread in threads:
            thread.join(timeout=5)
        self._drain(wait=0)  # whatever was received before the stop is committed too
        return self.stats

    # -- writer side --------------------------------------------------------------------------
    def _drain(self, wait: float) -> None:
        batch: list[_Item] = []
        deadline = time.monotonic() + wait
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item = self.items.get(timeout=timeout) if timeout > 0 else self.items.get_nowait()
            except queue.Empty:
                break
            batch.append(item)
            if self.stop.is_set() and wait > 0:
                break
        if not batch:
            return
        for item in batch:
            if item.kind == "error":
                self.say(f"warning: {item.message}")
        objects = [o for item in batch for o in item.objects]
        versions: dict[Resource, str] = {}
        for item in batch:
            if item.version:
                versions[item.resource] = item.version
        if objects or versions:
            self._write(objects, versions)

    def _write(self, objects: list[dict[str, Any]], versions: dict[Resource, str]) -> None:
        collected = collect_objects(objects, self.config, "watch")

        def work(session: WriteSession) -> DeriveSummary:
            summary = store_collected(session, self.config, collected)
            for resource, version in versions.items():
                session.set_state(f"k8s:{self.target}", f"rv:{resource.name}", version)
            session.messages.append(summary.line())
            return summary

        summary = write_unit(self.db_path, work, source="k8s-watch", target=self.target)
        self.stats.batches += 1
        self.stats.objects += len(objects)
        self.stats.events += summary.events
        self.stats.deployments = summary.deployments
        if summary.events:
            self.say(f"stored {summary.line()}")

    # -- reader side (one thread per resource) --------------------------------------------------
    def _watch_loop(self, resource: Resource, version: str) -> None:
        """Reconnects after a drop, a stall (no byte within the read timeout) or a watch that
        ended early without a single event, each with the same doubling backoff: a server that
        closes every watch at once would otherwise be asked again thousands of times a second."""
        from kubernetes import watch

        backoff = 0.5
        while not self.stop.is_set():
            stream = watch.Watch()
            with self._lock:
                self._streams.append(stream)
            started = time.monotonic()
            received = 0
            why = ""
            try:
                for event in self.cluster.watch(resource, version, stream):
                    if self.stop.is_set():
                        break
                    received += 1
                    backoff = 0.5
                    version = self._handle(resource, event, version)
                else:
                    lasted = time.monotonic() - started
                    if not received and lasted < self.cluster.limits.watch_seconds:
                        why = f"ended after {lasted:.1f}s without events"
            except Exception as exc:  # noqa: BLE001 - ApiException, ProtocolError, socket errors
                if self.stop.is_set():
                    break
                if getattr(exc, "status", None) == 410:
                    version = self._relist(resource, version)
                    continue
                if timed_out(exc):
                    why = f"stalled (nothing received for {self.cluster.limits.watch_timeout[1]:g} s)"
                elif isinstance(exc, SourceError):
                    why = f"failed: {exc}"
                else:
                    why = f"dropped ({type(exc).__name__})"
            finally:
                with self._lock:
                    if stream in self._streams:
                        self._streams.remove(stream)
            if not why or self.stop.is_set():
                continue
            self.stats.reconnects += 1
            line = f"watch {resource.name} {why}; reconnecting in {backoff:.1f}s"
            self.items.put(_Item("error", resource, message=line))
            self.stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _handle(self, resource: Resource, event: dict[str, Any], version: str) -> str:
        kind = event.get("type")
        raw = event.get("raw_object", event.get("object"))
        obj: dict[str, Any] = raw if isinstance(raw, dict) else {}
        meta = obj.get("metadata")
        new_version = str((meta if isinstance(meta, dict) else {}).get("resourceVersion") or version)
        if kind == "ERROR":
            code = obj.get("code")
            from kubernetes.client.rest import ApiException

            status = int(code) if isinstance(code, int) else 500
            raise ApiException(status=status, reason=str(obj.get("message")))
        if kind in ("ADDED", "MODIFIED"):
            try:
                _check_text(resource, [obj])
            except SourceError as exc:  # one unstorable object must not end the watch
                line = f"{exc}; object skipped"
                self.items.put(_Item("error", resource, version=new_version, message=line))
                return new_version
            obj.setdefault("apiVersion", _item_api_version(resource))
            obj.setdefault("kind", _item_kind(resource, {}))
            self.items.put(_Item("objects", resource, objects=relevant(resource, [obj]), version=new_version))
        else:  # BOOKMARK, DELETED: nothing to store, but the version moves on
            self.items.put(_Item("version", resource, version=new_version))
        return new_version

    def _relist(self, resource: Resource, version: str) -> str:
        """410 Gone: the watch fell too far behind; list again and watch from the new version."""
        self.stats.relists += 1
        try:
            items, new_version = self.cluster.list(resource)
        except Exception as exc:  # noqa: BLE001
            line = str(_source_error(resource, exc)).replace("kubernetes API: listing", "relist of", 1)
            self.items.put(_Item("error", resource, message=f"{line}; trying again"))
            self.stop.wait(1.0)
            return version
        self.items.put(_Item("objects", resource, objects=relevant(resource, items), version=new_version))
        return new_version
