"""`gitops-dora import` on random files (issue #12): JSON, JSON lines, YAML and CSV made from random
values, records of every kind with fields of the wrong type or out of range, and those files
truncated or with bytes flipped. Every outcome is a successful import (exit 0) or exactly one
``error:`` line with exit 2; never a traceback, never exit 1 (an unexpected exception), never a
hang.

The CLI runs in-process through ``analytics.cli.main.run`` (the same entry point as the console
script) so hundreds of files take seconds, against one store per test.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analytics.cli import main
from analytics.store import relations
from tests.typer_once import command_built_once

pytestmark = pytest.mark.usefixtures("one_duckdb_thread", "typer_command_once")  # tests/conftest.py, below


@pytest.fixture(scope="module", autouse=True)
def small_loads_as_values() -> Iterator[None]:
    """A user's `import` of a small file loads its rows as a VALUES list of literals (while pandas
    is not loaded: analytics.store.relations.values_pay); this worker has pandas loaded, so that
    path is chosen here on purpose. The DataFrame path gets the same rows in
    tests/test_small_loads_no_pandas.py."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(relations, "values_pay", relations.fits_values)
        yield
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
times = st.one_of(
    st.sampled_from([
        "2026-01-05T10:00:00Z", "2026-01-05 10:00:00", "2026-01-05", "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z", "1969-12-31T23:59:59+14:00", "2100-12-31T23:59:59-12:00", "", "yesterday",
        "2026-02-30T00:00:00Z", "2026-01-05T10:00:00+25:00",
    ]),
    st.integers(min_value=-(2**63), max_value=2**63), st.floats(allow_nan=True), values,
)
text_or_junk = st.one_of(st.text(max_size=20), values)


def incident() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"id": text_or_junk, "service": text_or_junk, "created_at": times},
        optional={"environment": text_or_junk, "resolved_at": times, "title": text_or_junk,
                  "root_cause": text_or_junk, "labels": values, "url": text_or_junk},
    )


def deployment() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"id": text_or_junk, "service": text_or_junk, "revision": text_or_junk, "deployed_at": times},
        optional={"environment": text_or_junk, "status": st.one_of(st.sampled_from(["success", "failed"]),
                                                                    text_or_junk),
                  "started_at": times, "repository": text_or_junk, "rollback": values},
    )


def reconciler_object() -> st.SearchStrategy[dict[str, Any]]:
    """Argo CD Applications and Flux Kustomizations/HelmReleases whose fields may be anything."""
    return st.builds(
        lambda kind, name, ns, status, spec, meta: {
            "apiVersion": {"Application": "argoproj.io/v1alpha1",
                           "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
                           "HelmRelease": "helm.toolkit.fluxcd.io/v2"}[kind],
            "kind": kind, "metadata": {"name": name, "namespace": ns, **meta}, "spec": spec, "status": status,
        },
        st.sampled_from(["Application", "Kustomization", "HelmRelease"]), text_or_junk, text_or_junk,
        st.one_of(values, st.fixed_dictionaries({}, optional={
            "history": st.lists(st.fixed_dictionaries({}, optional={
                "revision": text_or_junk, "deployedAt": times, "deployStartedAt": times, "id": values}),
                max_size=3),
            "lastAppliedRevision": text_or_junk, "lastAttemptedRevision": text_or_junk,
            "conditions": st.lists(st.fixed_dictionaries({}, optional={
                "type": st.sampled_from(["Ready", "Reconciling"]), "status": text_or_junk,
                "reason": text_or_junk, "lastTransitionTime": times, "message": text_or_junk}), max_size=3),
            "operationState": values, "sync": values, "health": values,
        })),
        st.one_of(values, st.fixed_dictionaries({}, optional={"source": values, "sourceRef": values,
                                                               "destination": values, "path": values})),
        st.dictionaries(st.sampled_from(["labels", "annotations", "uid", "creationTimestamp"]), values,
                        max_size=2),
    )


def k8s_event() -> st.SearchStrategy[dict[str, Any]]:
    """Kubernetes Events about reconciler objects and Flux notification events."""
    return st.fixed_dictionaries(
        {"involvedObject": st.one_of(values, st.fixed_dictionaries(
            {"kind": st.sampled_from(["Kustomization", "HelmRelease", "Application"]), "name": text_or_junk},
            optional={"namespace": text_or_junk, "apiVersion": text_or_junk}))},
        optional={"kind": st.just("Event"), "apiVersion": st.just("v1"), "reason": text_or_junk,
                  "message": text_or_junk, "lastTimestamp": times, "eventTime": times, "timestamp": times,
                  "severity": st.sampled_from(["info", "error"]), "reportingController": text_or_junk,
                  "source": values, "metadata": values},
    )


def argocd_notification() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"app": st.one_of(values, reconciler_object())},
                                 optional={"event": text_or_junk, "timestamp": times})


records = st.one_of(incident(), deployment(), reconciler_object(), k8s_event(), argocd_notification())


def to_json(rows: list[Any], wrap: bool) -> str:
    return json.dumps({"items": rows} if wrap else rows, default=str, indent=1)


def to_jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(r, default=str) + "\n" for r in rows)


def to_yaml(rows: list[Any], comment: str) -> str:
    return f"# {comment}\n" + yaml.safe_dump(rows, allow_unicode=True)


def to_csv(rows: list[dict[str, Any]]) -> str:
    columns = sorted({str(k) for r in rows if isinstance(r, dict) for k in r}) or ["id", "service"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([json.dumps(r.get(c), default=str) if isinstance(r.get(c), dict | list)
                         else r.get(c) for c in columns])
    return buf.getvalue()


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(records, min_size=1, max_size=4))
    form = draw(st.sampled_from(["json", "json-items", "jsonl", "yaml", "csv"]))
    text = {"json": lambda: to_json(rows, False), "json-items": lambda: to_json(rows, True),
            "jsonl": lambda: to_jsonl(rows), "yaml": lambda: to_yaml(rows, draw(st.text(max_size=20))),
            "csv": lambda: to_csv(rows)}[form]()
    data = text.encode("utf-8", "surrogatepass")
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip", "insert"]))
    if damage == "truncate" and data:
        data = data[: draw(st.integers(min_value=0, max_value=len(data) - 1))]
    elif damage == "flip" and data:
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    elif damage == "insert":
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data


def _nest(depth: int, leaf: Any, as_list: bool) -> Any:
    for _ in range(depth):
        leaf = [leaf] if as_list else {"k": leaf}
    return leaf


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """The shapes that break naive parsers: deep nesting, alias bombs, lone surrogates (which
    DuckDB refuses fatally), oversized CSV fields, NUL and control characters in values."""
    shape = draw(st.sampled_from(["deep-json", "deep-record", "deep-yaml", "aliases", "surrogate",
                                  "csv-field", "controls"]))
    depth = draw(st.integers(min_value=1, max_value=3000))
    row = {"id": "I1", "service": "web", "created_at": "2026-01-05T10:00:00Z"}
    if shape == "deep-json":
        text = "[" * depth + "]" * depth
    elif shape == "deep-record":
        text = json.dumps([{**row, "title": _nest(min(depth, 900), "x", draw(st.booleans()))}])
    elif shape == "deep-yaml":
        inner = "[" * depth + "1" + "]" * depth if draw(st.booleans()) else \
            "".join("  " * i + "k:\n" for i in range(min(depth, 300))) + "  " * min(depth, 300) + "v: 1"
        text = "- id: I1\n  service: web\n  created_at: 2026-01-05T10:00:00Z\n  title:\n" + \
            "\n".join("    " + line for line in inner.splitlines())
    elif shape == "aliases":
        fan, levels = draw(st.integers(1, 12)), draw(st.integers(1, 10))
        text = "a0: &a0 [x]\n" + "".join(
            f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]\n" for i in range(1, levels + 1))
        text = f"- id: I1\n  service: web\n  created_at: 2026-01-05T10:00:00Z\n  extra: {{{text}}}\n" \
            if draw(st.booleans()) else text
    elif shape == "surrogate":
        lone = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
        title = draw(st.text(lone, min_size=1, max_size=3))
        text = json.dumps([{**row, "title": "t" + title}])  # ensure_ascii writes \udXXX escapes
    elif shape == "csv-field":
        text = "id,service,created_at,title\nI1,web,2026-01-05T10:00:00Z,\"" + "x" * (depth * 60) + "\"\n"
    else:
        junk = draw(st.text(st.characters(max_codepoint=0x9F), min_size=1, max_size=10))
        text = json.dumps([{**row, "title": junk, "service": "web" + junk}])
    return text.encode()


@pytest.fixture(scope="module")
def typer_command_once() -> Iterator[None]:
    """The click command is built from the Typer app once for the module, not on every import
    (tests/typer_once.py: 0.02-0.03 CPU-s of each of the 380 in-process runs); each run still goes
    through ``main.run`` and a fresh click context."""
    with command_built_once():
        yield


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-import-") as folder:
        yield Path(folder)


def run_import(workdir: Path, data: bytes, name: str) -> tuple[int, str]:
    path = workdir / name
    path.write_bytes(data)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
            pytest.raises(SystemExit) as exit_info:
        main.run(["--db", str(workdir / "fuzz.ducklake"), "import", str(path)])
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), err.getvalue()


def check(code: int, err: str) -> None:
    event(f"exit {code}")  # --hypothesis-show-statistics: how many imports got through
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err


@settings(SETTINGS, max_examples=150)
@given(data=documents())
def test_random_records_import_or_fail_with_one_line(workdir: Path, data: bytes) -> None:
    check(*run_import(workdir, data, "records.input"))


@settings(SETTINGS, max_examples=150)
@given(data=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    values.map(lambda v: json.dumps(v, default=str).encode()),
    values.map(lambda v: yaml.safe_dump(v).encode()),
))
def test_random_bytes_import_or_fail_with_one_line(workdir: Path, data: bytes) -> None:
    check(*run_import(workdir, data, "bytes.input"))


@settings(SETTINGS, max_examples=80)
@given(data=hostile())
def test_hostile_shapes_import_or_fail_with_one_line(workdir: Path, data: bytes) -> None:
    check(*run_import(workdir, data, "hostile.input"))
