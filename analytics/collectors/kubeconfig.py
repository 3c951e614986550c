"""The kubeconfig ``collect k8s`` connects with: which file is read (``--kubeconfig``, else each
file of ``$KUBECONFIG``, else ``~/.kube/config``, else the pod's in-cluster account), which context,
and what it authenticates with.

Every credential it holds or produces is registered with :mod:`analytics.redaction` as soon as it
is loaded (each user's token, password, client key, auth-provider tokens, secret-named exec
``env`` values, and what a token file or exec plugin yields, refreshed ones included), so an API
server that echoes one back cannot make it appear in an error line. A failing exec credential
plugin stops the run with one line; its stderr, which may hold secrets, is not printed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics.errors import SourceError


@dataclass(frozen=True)
class Connection:
    """A client and what it is connected as: ``context`` names the collector state and the run
    (two kubeconfigs' current contexts must not share one), ``source`` names the kubeconfig in
    messages (the file actually read, never a default that was not)."""

    client: Any
    context: str
    source: str


def api_client(kubeconfig: str | None, context: str | None) -> Connection:
    """A client from the kubeconfig (``--kubeconfig``, else ``$KUBECONFIG``, else the pod's
    in-cluster config, else ``~/.kube/config``); errors name the kubeconfig that was read."""
    from kubernetes import client as k8s
    from kubernetes import config as kube_config
    from kubernetes.config.kube_config import KubeConfigLoader, KubeConfigMerger

    env_paths = os.environ.get("KUBECONFIG", "")
    if kubeconfig is None and context is None and not env_paths.strip():
        configuration = _configuration()
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except kube_config.ConfigException:
            pass
        else:
            _register_api_keys(configuration)
            _guard_refresh(configuration, "in-cluster config")
            return Connection(k8s.ApiClient(configuration), "in-cluster", "in-cluster config")
    where, paths = _kubeconfig_paths(kubeconfig, env_paths)
    try:
        merged = KubeConfigMerger(os.pathsep.join(paths)).config
    except Exception as exc:  # noqa: BLE001 - YAML, OS and ConfigException errors
        raise SourceError(f"kubeconfig {where}: {first_line(exc)}") from None
    if merged is None or not isinstance(merged.value, dict):
        raise SourceError(f"kubeconfig {where}: no configuration found")
    _register_kubeconfig_secrets(merged.value)
    entries = [_plain(c) for c in merged.value.get("contexts") or []]
    names = [str(c.get("name")) for c in entries if isinstance(c, dict)]
    wanted = context or merged.value.get("current-context")
    if not wanted:
        raise SourceError(f"kubeconfig {where}: no current-context; pass --context ({_listing(names)})")
    if str(wanted) not in names:
        raise SourceError(f"kubeconfig {where}: no context named {str(wanted)!r} ({_listing(names)})")
    configuration = _configuration()
    try:
        loader = KubeConfigLoader(config_dict=merged, active_context=str(wanted), config_base_path=None)
        with _plugin_failures() as failures:
            loader.load_and_set(configuration)
    except Exception as exc:  # noqa: BLE001 - the kubeconfig loader raises many types
        raise SourceError(f"kubeconfig {where}: {first_line(exc)}") from None
    if failures:
        raise SourceError(f"kubeconfig {where}: credential plugin failed ({failures[0]})")
    _register_api_keys(configuration)
    _guard_refresh(configuration, where)
    return Connection(k8s.ApiClient(configuration), str(wanted), where)


def _configuration() -> Any:
    """No hidden retries: urllib3 would repeat a timed-out GET three times, so a stalled server
    would cost four timeouts instead of one; the collector retries what is worth retrying."""
    from kubernetes import client as k8s

    configuration = k8s.Configuration()
    configuration.retries = False
    return configuration


def _kubeconfig_paths(kubeconfig: str | None, env_paths: str) -> tuple[str, list[str]]:
    """The files to read and how to name them: the one given, else every ``$KUBECONFIG`` entry
    that exists (kubectl skips missing ones too), else ``~/.kube/config``."""
    if kubeconfig is not None:
        where, candidates = kubeconfig, [kubeconfig]
    elif env_paths.strip():
        candidates = [p for p in env_paths.split(os.pathsep) if p.strip()]
        where = candidates[0] if len(candidates) == 1 else f"$KUBECONFIG ({env_paths})"
    else:
        where, candidates = "~/.kube/config", ["~/.kube/config"]
    paths: list[str] = []
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.is_dir():
            named = candidate if len(candidates) > 1 else where
            raise SourceError(f"kubeconfig {named}: is a folder, not a kubeconfig file")
        if path.is_file():
            paths.append(str(path))
    if not paths:
        raise SourceError(f"kubeconfig {where}: no such file")
    return where, paths


def _plain(node: Any) -> Any:
    """The loader wraps merged entries in ``ConfigNode``s; their ``value`` is the YAML as read."""
    return getattr(node, "value", node)


def _listing(names: list[str]) -> str:
    return f"it has {', '.join(repr(n) for n in names)}" if names else "it has no contexts"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- credentials ------------------------------------------------------------------------------
_SECRET_FIELDS = (
    "token",
    "password",
    "client-key-data",
    "id-token",
    "refresh-token",
    "client-secret",
    "access-token",
)
_SECRET_ENV_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY", re.IGNORECASE)


def _register_kubeconfig_secrets(config: dict[str, Any]) -> None:
    """Every user's credentials, not only the context's: a server may echo any of them."""
    from analytics.redaction import register_secret

    for entry in config.get("users") or []:
        user = _plain(entry).get("user") if isinstance(_plain(entry), dict) else None
        if not isinstance(user, dict):
            continue
        provider = user.get("auth-provider")
        sources = [user, provider.get("config") if isinstance(provider, dict) else None]
        for source in sources:
            if isinstance(source, dict):
                for key in _SECRET_FIELDS:
                    value = source.get(key)
                    if isinstance(value, str):
                        register_secret(value)
                        if key == "client-key-data":
                            _register_pem(_b64(value))
        exec_spec = user.get("exec")
        if isinstance(exec_spec, dict):
            for var in exec_spec.get("env") or []:
                if isinstance(var, dict) and _SECRET_ENV_NAME.search(str(var.get("name") or "")):
                    register_secret(str(var.get("value") or ""))


def _b64(value: str) -> str:
    import base64
    import binascii

    try:
        return base64.b64decode(value).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def _register_pem(text: str) -> None:
    """A private key echoed in part is still a leak: each base64 line of its body is masked."""
    from analytics.redaction import register_secret

    register_secret(text)
    for line in text.splitlines():
        if not line.startswith("-----"):
            register_secret(line)


def _register_api_keys(configuration: Any) -> None:
    """The credential actually sent (a token file's, an exec plugin's or basic auth's header
    value) and the client key the connection presents, whichever way they were obtained."""
    from analytics.redaction import register_secret

    for value in (getattr(configuration, "api_key", None) or {}).values():
        if isinstance(value, str):
            register_secret(value.split(" ", 1)[-1])
    key_file = getattr(configuration, "key_file", None)
    if key_file:
        with contextlib.suppress(OSError), open(key_file, encoding="utf-8", errors="replace") as handle:
            _register_pem(handle.read(1024 * 1024))


class _PluginFailures(logging.Filter):
    """The kubeconfig loader logs an exec plugin's failure (its stderr included, which may hold
    secrets) at ERROR on the root logger and goes on unauthenticated; this takes those records."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.module != "kube_config" or record.levelno < logging.ERROR:
            return True
        self.reasons.append(_plugin_reason(record.getMessage()))
        return False


def _plugin_reason(message: str) -> str:
    """A few words on why, from the loader's message but never quoting it (it carries stderr)."""
    exited = re.match(r"exec: process returned (-?\d+)", message)
    if exited:
        return f"exit {exited.group(1)}"
    if "No such file" in message or "Permission denied" in message or "Errno" in message:
        return "its command could not be run"
    if "decode process output" in message:
        return "its output is not JSON"
    if "missing token" in message or "missing clientKeyData" in message:
        return "its output holds no credential"
    return "its output is not an ExecCredential"


@contextlib.contextmanager
def _plugin_failures() -> Iterator[list[str]]:
    catcher = _PluginFailures()
    root = logging.getLogger()
    root.addFilter(catcher)
    try:
        yield catcher.reasons
    finally:
        root.removeFilter(catcher)


def _guard_refresh(configuration: Any, where: str) -> None:
    """An exec credential expires and is fetched again before a request: the new one is registered
    as a secret too, and a failed refresh is an error instead of an unauthenticated request."""
    hook = getattr(configuration, "refresh_api_key_hook", None)
    if hook is None:
        return

    def refresh(config: Any) -> None:
        with _plugin_failures() as failures:
            hook(config)
        if failures:
            raise SourceError(f"kubeconfig {where}: credential plugin failed ({failures[0]})")
        _register_api_keys(config)

    configuration.refresh_api_key_hook = refresh
