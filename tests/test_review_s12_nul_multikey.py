"""A NUL in a key column that is not the last one DuckLake writes into its file-list SQL fails with
'syntax error at or near "<the next literal>"', not 'unterminated quoted string': the store's
UnstorableKeyError must name it all the same (before, the CLI printed the parser error and the
receiver answered 503, so Flux retried a notification naming such an object for ever)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.reconciler_objects import notification
from tests.webhook_senders import receiver

FLUX_SECRET = "flux-hmac-key-nul"
_COLUMNS = ["reconciler", "kind", "namespace", "name", "service", "environment", "mapped_by", "last_seen"]


@pytest.mark.parametrize("column", ["name", "namespace", "kind", "reconciler"])
def test_a_nul_in_any_column_of_a_multi_column_key_is_named(tmp_path: Path, column: str) -> None:
    from analytics.store.connection import open_writer
    from analytics.store.upsert import UnstorableKeyError, merge

    db = tmp_path / "s.ducklake"
    with open_writer(db, source="test") as session:
        session.con.execute(
            "INSERT INTO reconciler_objects (reconciler, kind, namespace, name, service, environment, "
            "mapped_by, last_seen) SELECT 'flux', 'Kustomization', 'ns' || (i % 5), 'obj' || i, 's', "
            "'e', 'x', now() FROM range(200) r(i)")
    values = {"reconciler": "'flux'", "kind": "'Kustomization'", "namespace": "'flux-system'",
              "name": "'n' || i"}
    values[column] = f"CASE WHEN i = 0 THEN 'a' || chr(0) || 'b' ELSE {values[column]} END"
    source = ("SELECT " + ", ".join(f"{v} AS {c}" for c, v in values.items())
              + ", 's' AS service, 'e' AS environment, 'x' AS mapped_by, now() AS last_seen"
              " FROM range(20) r(i)")
    with (pytest.raises(UnstorableKeyError, match="reconciler_objects key value .* contains a NUL"),
          open_writer(db, source="test") as session):
        merge(session.con, "reconciler_objects", source, _COLUMNS)


def _flux_post(client: httpx.Client, url: str, event: dict[str, object]) -> httpx.Response:
    body = json.dumps(event).encode()
    signature = "sha256=" + hmac.new(FLUX_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return client.post(url + "/webhooks/flux", content=body,
                       headers={"Content-Type": "application/json", "X-Signature": signature})


def test_the_receiver_answers_422_for_a_flux_object_named_with_nul(tmp_path: Path) -> None:
    at = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    revision = "main@sha1:" + "f" * 40
    with (receiver(tmp_path / "rx.ducklake", {"GITOPS_DORA_FLUX_SECRET": FLUX_SECRET}) as rx,
          httpx.Client(timeout=30) as client):
        hostile = notification("Kustomization", "a\u0000b-production", "flux-system",
                               "ReconciliationSucceeded", "ok", at, revision=revision)
        answer = _flux_post(client, rx.url, hostile)
        assert answer.status_code == 422, answer.text  # 503 before: retried for ever
        assert "NUL character" in answer.json()["message"]
        clean = notification("Kustomization", "api-production", "flux-system",
                             "ReconciliationSucceeded", "ok", at, revision=revision)
        answer = _flux_post(client, rx.url, clean)
        assert answer.status_code == 200, answer.text


def test_only_the_file_list_query_s_parser_errors_count_as_a_nul() -> None:
    import duckdb

    from analytics.store.upsert import is_nul_in_key

    listing = "Parser Error: Failed to get data file list from DuckLake: "
    assert is_nul_in_key(duckdb.ParserException(listing + 'syntax error at or near "flux"'))
    assert is_nul_in_key(duckdb.ParserException(listing + "unterminated quoted string at or near \"'x\""))
    # the user's own SQL, or the same words in another kind of failure: not a NUL
    assert not is_nul_in_key(duckdb.ParserException('Parser Error: syntax error at or near "SELEC"'))
    assert not is_nul_in_key(duckdb.IOException(listing + 'syntax error at or near "flux"'))
