"""Reading Argo CD and Flux state from a cluster with the official kubernetes client.

``collect`` lists Applications, Kustomizations, HelmReleases and core/v1 Events (following
``continue`` tokens) and stores them in one transaction. ``Watcher`` lists first, then watches
each resource from the list's resourceVersion: BOOKMARKs advance it, a 410 Gone relists, a dropped
connection reconnects with backoff. Watch threads only read; one writer (the caller's thread)
commits a batch before it counts as acknowledged, so a stop (SIGTERM) loses nothing acknowledged
and a relist re-delivers nothing twice (event ids are natural keys, inserted only once).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.collectors.reconciler_input import collect_objects, is_reconciler_event
from analytics.config import Config
from analytics.deployments.from_reconcilers import DeriveSummary, store_collected
from analytics.errors import SourceError
from analytics.store.connection import WriteSession, write_unit
from analytics.store.location import StoreRef

PAGE_SIZE = 250
WATCH_TIMEOUT_SECONDS = 300
MAX_BACKOFF_SECONDS = 30.0


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


def api_client(kubeconfig: str | None, context: str | None) -> Any:
    """A client from the kubeconfig (or in-cluster config); errors name the kubeconfig."""
    from kubernetes import config as kube_config

    if kubeconfig is None and context is None:
        try:
            kube_config.load_incluster_config()
            from kubernetes import client

            return client.ApiClient()
        except kube_config.ConfigException:
            pass
    where = kubeconfig or "~/.kube/config"
    if kubeconfig is not None and not Path(kubeconfig).expanduser().is_file():
        raise SourceError(f"kubeconfig {kubeconfig}: no such file")
    try:
        return kube_config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # noqa: BLE001 - the kubeconfig loader raises many types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(f"kubeconfig {where}: {first}") from None


class Cluster:
    """List and watch calls for the resources, returning raw JSON exactly as the API sends it."""

    def __init__(self, client: Any) -> None:
        from kubernetes import client as k8s

        self.custom = k8s.CustomObjectsApi(client)
        self.core = k8s.CoreV1Api(client)

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
        version = ""
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            response = func(*args, **kwargs)
            doc = json.loads(response.data)
            for item in doc.get("items") or []:
                if isinstance(item, dict):
                    item.setdefault("apiVersion", _item_api_version(resource))
                    item.setdefault("kind", _item_kind(resource, doc))
                    items.append(item)
            meta = doc.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = meta.get("continue") or None
            if not token:
                return items, version

    def watch(self, resource: Resource, version: str, watcher: Any) -> Iterator[dict[str, Any]]:
        func, args = self._call(resource)
        yield from watcher.stream(
            func,
            *args,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_TIMEOUT_SECONDS,
        )


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
        except Exception as exc:  # noqa: BLE001 - ApiException or a connection error
            if _not_installed(exc):
                notes.append(f"{resource.name} not served by this cluster; skipped")
                continue
            raise _source_error(resource, exc) from None
        objects.extend(relevant(resource, items))
        versions[resource] = version
    return objects, versions


def _source_error(resource: Resource, exc: Exception) -> SourceError:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    code = f"HTTP {status} " if status else ""
    return SourceError(f"kubernetes API: listing {resource.name} failed: {code}{reason}")


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
        from kubernetes import watch

        backoff = 0.5
        while not self.stop.is_set():
            stream = watch.Watch()
            with self._lock:
                self._streams.append(stream)
            try:
                for event in self.cluster.watch(resource, version, stream):
                    if self.stop.is_set():
                        break
                    backoff = 0.5
                    version = self._handle(resource, event, version)
            except Exception as exc:  # noqa: BLE001 - ApiException, ProtocolError, socket errors
                if self.stop.is_set():
                    break
                if getattr(exc, "status", None) == 410:
                    version = self._relist(resource, version)
                    continue
                self.stats.reconnects += 1
                self.items.put(
                    _Item(
                        "error",
                        resource,
                        message=f"watch {resource.name} dropped "
                        f"({type(exc).__name__}); reconnecting in {backoff:.1f}s",
                    )
                )
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                with self._lock:
                    if stream in self._streams:
                        self._streams.remove(stream)

    def _handle(self, resource: Resource, event: dict[str, Any], version: str) -> str:
        kind = event.get("type")
        raw = event.get("raw_object", event.get("object"))
        obj: dict[str, Any] = raw if isinstance(raw, dict) else {}
        new_version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind == "ERROR":
            code = obj.get("code")
            from kubernetes.client.rest import ApiException

            raise ApiException(status=int(code) if code else 500, reason=str(obj.get("message")))
        if kind in ("ADDED", "MODIFIED"):
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
            self.items.put(_Item("error", resource, message=f"relist of {resource.name} failed: {exc}"))
            self.stop.wait(1.0)
            return version
        self.items.put(_Item("objects", resource, objects=relevant(resource, items), version=new_version))
        return new_version
