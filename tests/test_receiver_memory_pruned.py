"""The receiver's large-body path against its in-memory path (issue #16, session 7).

A large push is parsed piece by piece with each commit cut down to the keys the provider reads
(``analytics/webhooks/pruned_json.py``), its rows wait for the writer as Arrow tables and are
MERGEd from them (``writer.TableRows``), and its payload is stored from the memory-mapped spool
file as Arrow JSON. The in-memory path parses the whole body with orjson, keeps the rows as dicts
and binds the payload text. These tests run both on the same large deliveries of every kind the
providers turn into rows, into two real stores, and require the same tables and audit rows; and
they hold the piecewise parse to orjson's whole parse on bodies made to trip a scanner.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from analytics.config import Config
from analytics.webhooks import server
from analytics.webhooks.providers import github, gitlab
from analytics.webhooks.pruned_json import parse_pruned
from analytics.webhooks.writer import Delivery, DeliveryWriter, TableRows, discard_payload_file, table_rows
from tests.receiver_tables import every_row
from tests.reconciler_objects import application, notification
from tests.store_query import query
from tests.webhook_senders import gh_deployment_status, gh_issue, gh_push

REPO = "acme/pruned"
T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
FILLER = "lorem ipsum [dolor] {sit} \"amet\" \\ é ✓ " * 12  # brackets, quotes, escapes, non-ASCII
TABLES = ("commits", "webhook_pushes", "webhook_pull_requests", "pull_requests", "pr_reviews", "deployments",
          "deployment_changes", "incidents", "releases", "reconciler_objects", "reconciler_events")
KEEP = frozenset({"id", "sha", "timestamp", "author", "committer", "message"})


def sha(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()


def github_push(commits: int) -> dict[str, Any]:
    """A push whose commits vary the way real and odd ones do: a committer other than the author,
    no timestamp, a revert, a duplicate sha, an item that is not an object, one without an id."""
    payload = gh_push(REPO, "refs/heads/main", sha(999_999),
                      [(sha(n), f"2026-04-01T{n % 24:02d}:{n % 60:02d}:00Z", f"change {n}\n\n{FILLER}")
                       for n in range(commits)])
    items = payload["commits"]
    items[1]["committer"] = {"name": "Grace", "email": "grace@example.com"}
    del items[2]["timestamp"]
    items[3]["message"] = f'Revert "change 1"\n\nThis reverts commit {sha(1)}.'
    items[5]["id"] = sha(4)  # the same commit listed twice: the last one wins
    items[6] = {"sha": sha(6), "message": "sha, not id", "timestamp": "2026-04-01T06:06:00+02:00",
                "author": {"name": "Ada"}, "files": [{"deep": [[FILLER]]}]}
    items.insert(7, "not a commit")
    items.insert(8, {"message": "no id", "added": [FILLER]})
    for item in items:
        if isinstance(item, dict):
            item["added"] = [f"src/{FILLER[:40]}/{n}.py" for n in range(6)]
    payload["head_commit"] = items[-1]
    return payload


def gitlab_push(commits: int) -> dict[str, Any]:
    return {
        "object_kind": "push", "event_name": "push", "before": "0" * 40, "after": sha(commits - 1),
        "ref": "refs/heads/main", "checkout_sha": sha(commits - 1), "user_name": "Grace",
        "project": {"path_with_namespace": "acme/gl-pruned", "name": "gl-pruned"},
        "commits": [{"id": sha(n), "message": f"gl change {n}\n\n{FILLER}", "title": f"gl change {n}",
                     "timestamp": f"2026-04-01T{n % 24:02d}:00:00+02:00", "url": f"https://gl/{n}",
                     "author": {"name": "Grace", "email": "grace@example.com"},
                     "added": [FILLER], "modified": [], "removed": []} for n in range(commits)],
        "total_commits_count": commits,
    }


def github_pull_request() -> dict[str, Any]:
    """Not a push, but with a top-level ``commits`` array the scan cuts: the whole parse decides."""
    return {
        "action": "closed", "number": 9, "repository": {"full_name": REPO},
        "commits": [{"id": sha(n), "tree": FILLER} for n in range(400)],
        "pull_request": {"number": 9, "title": 12345678901234567890123, "state": "closed",
                         "merged_at": "2026-04-01T10:00:00Z", "created_at": "2026-04-01T08:00:00Z",
                         "updated_at": "2026-04-01T10:00:00Z", "user": {"login": "ada"},
                         "base": {"ref": "main"}, "head": {"ref": "feature"}, "body": FILLER * 400,
                         "labels": [{"name": "x"}], "html_url": "https://github.com/acme/pruned/pull/9"},
    }


def deliveries() -> list[tuple[ModuleType, dict[str, str], dict[str, Any]]]:
    """(provider, headers, payload) of every kind the providers turn into rows, each over 256 KiB
    with content (not padding) no provider reads."""
    history = [(sha(n), T0 + timedelta(minutes=n)) for n in range(1200)]
    app = application("storefront-production", repo_url="https://git.example/acme/pruned", path="deploy",
                      dest_namespace="storefront", history=history)
    issue = gh_issue(REPO, 12, ["incident"], "2026-04-01T06:00:00Z", closed="2026-04-01T07:00:00Z",
                     body="root cause: " + sha(2) + FILLER * 600)
    status = gh_deployment_status(REPO, 41, sha(3), "success", "2026-04-01T05:00:00Z")
    status["deployment"]["payload"] = {"notes": [FILLER] * 600}
    flux_event = notification("Kustomization", "payments-api-production", "flux-system",
                              "ReconciliationSucceeded", "done " + FILLER * 600, T0,
                              revision="main@sha1:" + sha(3))
    from analytics.webhooks.providers import argocd, flux

    return [
        (github, {"x-github-event": "push"}, github_push(1200)),
        (github, {"x-github-event": "pull_request"}, github_pull_request()),
        (github, {"x-github-event": "deployment_status"}, status),
        (github, {"x-github-event": "issues"}, issue),
        (gitlab, {"x-gitlab-event": "Push Hook"}, gitlab_push(900)),
        (argocd, {}, app),
        (flux, {}, flux_event),
    ]


def endpoint(module: ModuleType) -> server.Endpoint:
    return next(e for e in server.provider_secrets({}) if e.module is module)


def in_memory(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> None:
    """The in-memory path for large bodies: no cut parse, no spool file (so dict rows, bound text)."""
    monkeypatch.delattr(module, "PRUNED_ARRAY", raising=False)
    monkeypatch.setattr(server, "spool_payload", lambda text: None)


def prepared(module: ModuleType, headers: dict[str, str], body: bytes, columns: Any, n: int) -> Delivery:
    head = headers | {"x-github-delivery": f"d{n}", "idempotency-key": f"d{n}"}
    result = server.prepare(endpoint(module), head, bytearray(body), Config(), columns, True, 0.0, T0)
    assert result.delivery is not None, result.message
    return result.delivery


def store(db: Path, made: list[Delivery], *, one_batch: bool = False) -> list[str]:
    """Each delivery in a batch of its own, or (``one_batch``) all in one: queued before the writer
    starts, so its first batch gathers them (two deliveries' commits then take the lists' way)."""
    writer = DeliveryWriter(db, Config())
    if one_batch:
        for delivery in made:
            writer.submit(delivery)
    writer.start()
    try:
        outcomes = []
        for delivery in made:
            if not one_batch:
                writer.submit(delivery)
            outcomes.append(delivery.future.result(timeout=300))
        if one_batch:
            assert writer.batches == 1
        return outcomes
    finally:
        writer.stop()


def columns_of(tmp_path: Path) -> Any:
    """The columns a new store's writer knows (what the payload rows are checked against)."""
    writer = DeliveryWriter(tmp_path / "columns.ducklake", Config())
    writer.open()
    try:
        return writer.columns
    finally:
        writer._close()


def test_large_deliveries_of_every_kind_store_the_same_as_the_in_memory_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    known = columns_of(tmp_path)
    sent = [(module, headers, json.dumps(payload, ensure_ascii=False).encode())
            for module, headers, payload in deliveries()]
    assert all(len(body) > server.LARGE_PAYLOAD for _, _, body in sent)
    large = [prepared(module, headers, body, known, n) for n, (module, headers, body) in enumerate(sent)]
    # the push of each code host took the cut parse and Arrow rows; the rest at least the spool file
    assert [d.payload_file is not None for d in large] == [True] * len(sent)
    assert isinstance(large[0].rows["commits"], TableRows) and isinstance(large[4].rows["commits"], TableRows)
    with monkeypatch.context() as patch:
        for module, _, _ in sent:
            in_memory(patch, module)
        memory = [prepared(module, headers, body, known, n) for n, (module, headers, body) in enumerate(sent)]
    assert all(d.payload_file is None and all(isinstance(r, list) for r in d.rows.values()) for d in memory)
    assert store(tmp_path / "large.ducklake", large) == store(tmp_path / "memory.ducklake", memory) == (
        ["stored"] * len(sent))
    assert not list(tmp_path.glob("gitops-dora-payload-*"))

    on_disk = every_row(tmp_path / "large.ducklake", TABLES)
    in_ram = every_row(tmp_path / "memory.ducklake", TABLES)
    assert all(on_disk[t] for t in ("commits", "webhook_pushes", "pull_requests", "deployments", "incidents",
                                    "reconciler_events")), on_disk
    assert len(on_disk["commits"]) == 1200 - 1 + 900  # the duplicate once; the non-object and id-less none
    assert on_disk == in_ram
    audit = ("SELECT provider, delivery_id, event, body_sha256, payload::VARCHAR, rows_written"
             " FROM webhook_deliveries ORDER BY delivery_id")
    stored = query(tmp_path / "large.ducklake", audit)
    assert stored == query(tmp_path / "memory.ducklake", audit)
    assert [row[4] for row in stored] == [body.decode() for _, _, body in sent]
    # All of them in one batch: the same again.
    batch = [prepared(module, headers, body, known, n) for n, (module, headers, body) in enumerate(sent)]
    assert store(tmp_path / "batch.ducklake", batch, one_batch=True) == ["stored"] * len(sent)
    assert every_row(tmp_path / "batch.ducklake", TABLES) == in_ram
    assert query(tmp_path / "batch.ducklake", audit) == stored
    assert not list(tmp_path.glob("gitops-dora-payload-*"))


def test_table_rows_keep_only_columns_arrow_holds_as_the_lists_bind_them() -> None:
    base = {"repo": "r", "sha": "a", "parents": ["p"], "author_time": T0}
    tabled = table_rows("commits", [base, base | {"sha": "b", "parents": []}, base | {"author_name": "x"}])
    assert tabled is not None and tabled.made == 3 and len(tabled) == 2  # the last row of sha "a" wins
    assert list(tabled) == [base | {"author_name": "x"},
                            base | {"sha": "b", "parents": [], "author_name": None}]
    for odd in ({"author_tz": True}, {"author_tz": 2.5}, {"parents": [1]}, {"parents": [["p"]]},
                {"subject": {"a": 1}}, {"author_tz": 2**64}, {"subject": "\ud800"}):
        first = base | {"sha": "b", "author_tz": 1, "subject": "s"}
        assert table_rows("commits", [first, base | odd]) is None, odd


def cut(payload: Any) -> Any:
    """What the scan should give: orjson's whole parse with each object item of commits cut down."""
    if isinstance(payload, dict) and isinstance(payload.get("commits"), list):
        payload["commits"] = [{k: v for k, v in item.items() if k in KEEP} if isinstance(item, dict) else item
                              for item in payload["commits"]]
    return payload


TRICKY = [
    b'{}',
    b' \t\r\n{ \t\r\n"commits" \n:\r\n[ ] \t}\n ',
    b'{"commits": [{"id": "a]}\\"[{", "url": "x\\\\", "added": ["}]"]}, 7, "s", null, [1, [2]], {}]}',
    b'{"commits": "not an array", "after": 1e5, "n": -0.5E-3, "t": true, "f": false, "z": null}',
    b'{"commits": {"id": "an object"}, "big": 123456789012345678901234567890}',
    b'{"commits": [{"id": 1, "added": [1]}], "commits": [{"id": 2, "url": "u"}]}',
    b'{"comm\\u0069ts": [{"id": "escaped key", "tree_id": "t"}], "\\u005d": "\\u005b\\ud83d\\ude00"}',
    '{"commits": [{"id": "ä✓😀", "message": "ünïcødé", "files": {"x": "ß"}}], "é": "ü"}'.encode(),
    b'{"commits": [{"id": "x", "id": "y", "url": "u"}], "repository": {"a": [[[[]]]]}}',
    b'{"q\\"uote": "x\\"}y\\\\", "commits": [{"id": "\\\\", "u": "\\"]"}, "\\""], "e": "\\\\"}',
    b'{"ref": "refs/heads/main", "commits": [\n  {\n    "id": "a",\n    "message": "m"\n  }\n]\n}',
]

UNVOUCHED = [
    b'', b'   ', b'[]', b'"s"', b'{"a": 1,}', b'{"commits": [1,]}', b'{"commits": [1 2]}', b'{"a" 1}',
    b'{"a": 1} x', b'{"a": 1}{"b": 2}', b'\xef\xbb\xbf{"a": 1}', b"{'a': 1}", b'{"a": "unterminated}',
    b'{"commits": [{"id": NaN}]}', b'{"a": tru}', b'{"commits": [{"id": "\xff"}]}', b'{"\xfe": 1}',
    b'{"a": "\x01"}', b'{"commits": [{"id": "\\ud800"}]}', b'{"a": 01}', b'{,"a": 1}', b'{"commits": [}',
    b'{"a": ' + b"[" * 200 + b"]" * 200 + b"}",
    b'{"commits": [' + b"[" * 127 + b"]" * 127 + b"]}",
]


@pytest.mark.parametrize("body", TRICKY)
def test_the_cut_parse_equals_orjsons_whole_parse_cut_down(body: bytes) -> None:
    parsed = parse_pruned(body, "commits", KEEP, server.json_depth_ok, server.MAX_JSON_DEPTH)
    assert parsed is not None
    whole = orjson.loads(body)
    assert parsed[0] == cut(whole)
    assert list(parsed[0]) == list(whole)  # the keys in the same order too
    assert parsed[1] == (parsed[0] != orjson.loads(body))


@pytest.mark.parametrize("body", UNVOUCHED)
def test_the_cut_parse_leaves_what_it_cannot_vouch_for_to_the_whole_parse(body: bytes) -> None:
    assert parse_pruned(body, "commits", KEEP, server.json_depth_ok, server.MAX_JSON_DEPTH) is None
    try:
        whole = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # refused by the whole parse: 400 or 422, as for a small body
    assert not isinstance(whole, dict) or not server.json_depth_ok(whole)


def test_a_large_body_the_scan_refuses_gets_the_answer_of_the_whole_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    good = json.dumps(github_push(400)).encode()
    for flaw in (good[:-1] + b', "n": NaN}', good[:-1] + b', "s": "\\ud800"}', good[:100], b"[" + good + b"]",
                 good[:-1] + b', "deep": ' + b"[" * 130 + b"]" * 130 + b"}", good + b" x"):
        answers = []
        for cut_parse in (True, False):
            with monkeypatch.context() as patch:
                if not cut_parse:
                    patch.delattr(github, "PRUNED_ARRAY")
                result = server.prepare(endpoint(github), {"x-github-event": "push"}, bytearray(flaw),
                                        Config(), {}, True, 0.0, T0)
            assert result.delivery is None
            answers.append((result.status, result.message))
        assert answers[0] == answers[1] and answers[0][0] in (400, 422), answers
    assert not list(tmp_path.glob("gitops-dora-payload-*"))
    # and the good one, cut: the rows the provider makes from the whole parse
    delivery = server.prepare(endpoint(github), {"x-github-event": "push"}, bytearray(good), Config(),
                              _columns(), True, 0.0, T0).delivery
    assert delivery is not None
    expected = github.to_rows({"x-github-event": "push"}, orjson.loads(good), Config())
    assert {t: list(r) for t, r in delivery.rows.items()} == {
        "commits": list({(c["repo"], c["sha"]): c for c in expected["commits"]}.values()),
        "webhook_pushes": expected["webhook_pushes"]}
    discard_payload_file(delivery)


def _columns() -> dict[str, Any]:
    from analytics.webhooks.writer import Column

    lists = ("parents", "commit_shas")
    made = github.to_rows({"x-github-event": "push"}, github_push(20), Config())
    return {table: {c: Column("VARCHAR[]" if c in lists else "VARCHAR", True) for c in rows[0]}
            for table, rows in made.items()}


def test_a_body_of_more_pieces_than_the_scan_takes_is_parsed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics.webhooks import pruned_json

    body = json.dumps({"ref": "r", "commits": [{"id": sha(n), "url": "u"} for n in range(20)]}).encode()
    assert parse_pruned(body, "commits", KEEP, server.json_depth_ok, server.MAX_JSON_DEPTH) is not None
    monkeypatch.setattr(pruned_json, "MAX_PIECES", 15)
    assert parse_pruned(body, "commits", KEEP, server.json_depth_ok, server.MAX_JSON_DEPTH) is None


def test_a_large_push_delivered_again_is_a_duplicate_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    body = json.dumps(github_push(300)).encode()
    assert len(body) > server.LARGE_PAYLOAD
    db = tmp_path / "again.ducklake"
    columns = DeliveryWriter(db, Config())
    columns.open()
    known = columns.columns
    columns._close()
    first = prepared(github, {"x-github-event": "push"}, body, known, 1)
    assert store(db, [first]) == ["stored"]
    before = query(db, "SELECT * FROM commits ORDER BY sha")
    again = prepared(github, {"x-github-event": "push"}, body, known, 1)
    assert again.payload_file is not None and isinstance(again.rows["commits"], TableRows)
    assert store(db, [again]) == ["duplicate"]
    assert query(db, "SELECT * FROM commits ORDER BY sha") == before and len(before) == 299
    assert query(db, "SELECT count(*), min(rows_written) FROM webhook_deliveries") == [(1, 301)]
    assert not list(tmp_path.glob("gitops-dora-payload-*"))
