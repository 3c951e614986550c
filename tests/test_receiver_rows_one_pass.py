"""A large push's rows are made with each cut commit let go of once the provider's loop has passed
it (issue #16, session 9: ``server._rows_in_one_pass``): the cut items and the rows made from them
were both whole at once, the peak of ``prepare`` for a spooled body. These tests hold the rows made
that way to the rows the provider makes from the plain list (GitHub and GitLab pushes of odd
commits), check that a provider reading the array any other way gets the rows of a fresh parse, and
that the items really are let go of (Python's traced memory while the rows are made, relative to
what the plain list costs, so the test fails if the mechanism stops working).
"""

from __future__ import annotations

import copy
import json
import tracemalloc
from collections.abc import Callable, Mapping
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from analytics.config import Config
from analytics.webhooks import server
from analytics.webhooks.providers import github, gitlab
from analytics.webhooks.pruned_json import parse_pruned
from tests.test_receiver_memory_pruned import github_push, gitlab_push

PUSHES = [(github, {"x-github-event": "push"}, github_push),
          (gitlab, {"x-gitlab-event": "Push Hook"}, gitlab_push)]


def cut(module: ModuleType, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the receiver's cut parse gives it for a large body."""
    _, array, keep = module.PRUNED_ARRAY
    parsed = parse_pruned(json.dumps(payload, ensure_ascii=False).encode(), array, keep,
                          server.json_depth_ok, server.MAX_JSON_DEPTH)
    assert parsed is not None and parsed[1]
    result: dict[str, Any] = parsed[0]
    return result


@pytest.mark.parametrize(("module", "headers", "make"), PUSHES, ids=["github", "gitlab"])
def test_rows_made_in_one_pass_are_the_rows_of_the_plain_list(
    module: ModuleType, headers: dict[str, str], make: Callable[[int], dict[str, Any]]
) -> None:
    payload = cut(module, make(1500))
    expected = module.to_rows(headers, copy.deepcopy(payload), Config())
    assert len(expected["commits"]) > 1000
    again: list[int] = []
    rows, used = server._rows_in_one_pass(module, headers, payload, Config(), lambda: again.append(1))
    assert rows == expected
    assert again == []  # the providers' pushes read the array in one loop: no second parse
    assert used is payload and all(item is None for item in list.__iter__(payload["commits"]))


def reader(read: Callable[[list[Any]], Any]) -> ModuleType:
    """A provider whose rows read its cut array in one loop and then ``read`` it again."""

    def to_rows(headers: Mapping[str, str], payload: dict[str, Any], config: Config) -> dict[str, Any]:
        items = payload["commits"]
        rows = [{"repo": "r", "sha": str(item["id"])} for item in items]
        extra = read(items)
        return {"commits": rows, "webhook_pushes": [{"extra": repr(extra)}]}

    return SimpleNamespace(PRUNED_ARRAY=("push", "commits", frozenset({"id"})), to_rows=to_rows)  # type: ignore[return-value]


@pytest.mark.parametrize("read", [
    lambda items: len(items),
    lambda items: items[-1],
    lambda items: [item["id"] for item in items],  # a second loop over items already gone: TypeError
    lambda items: sorted(items, key=lambda item: item["id"]),
    lambda items: items.index(items[0]),
    lambda items: items.count(None),
    lambda items: list(reversed(items)),
], ids=["len", "index", "second-loop", "sorted", "list.index", "list.count", "reversed"])
def test_a_provider_that_reads_the_array_again_gets_the_rows_of_a_fresh_parse(
    read: Callable[[list[Any]], Any]
) -> None:
    module = reader(read)
    payload = {"commits": [{"id": n} for n in range(50)], "ref": "main"}
    expected = module.to_rows({}, copy.deepcopy(payload), Config())
    parses: list[dict[str, Any]] = []

    def again() -> dict[str, Any]:
        parses.append(copy.deepcopy({"commits": [{"id": n} for n in range(50)], "ref": "main"}))
        return parses[-1]

    rows, used = server._rows_in_one_pass(module, {}, payload, Config(), again)
    assert len(parses) == 1 and used is parses[0]
    assert rows == expected


def test_a_provider_that_fails_on_its_own_is_not_parsed_again() -> None:
    def to_rows(headers: Mapping[str, str], payload: dict[str, Any], config: Config) -> dict[str, Any]:
        for item in payload["commits"]:
            if item["id"] == 3:
                raise ValueError("commit 3 is odd")
        return {}

    module = SimpleNamespace(PRUNED_ARRAY=("push", "commits", frozenset({"id"})), to_rows=to_rows)
    again: list[int] = []
    with pytest.raises(ValueError, match="commit 3 is odd"):
        server._rows_in_one_pass(module, {}, {"commits": [{"id": n} for n in range(9)]}, Config(),  # type: ignore[arg-type]
                                 lambda: again.append(1))
    assert again == []


def test_the_items_are_let_go_of_while_the_rows_are_made() -> None:
    """Traced memory while GitHub's rows are made from a cut push of 4,000 commits: from the plain
    list the items stay and the rows come on top; in one pass each row takes its item's place."""
    pushed = github_push(4000)
    headers = {"x-github-event": "push"}

    def growth(make: Callable[[dict[str, Any]], Any]) -> int:
        tracemalloc.start()  # before the payload is parsed: its items' memory is traced, and freed
        try:
            source = cut(github, pushed)
            start, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            rows = make(source)
            _, peak = tracemalloc.get_traced_memory()
            assert rows["commits"]
            return peak - start
        finally:
            tracemalloc.stop()

    plain = growth(lambda p: github.to_rows(headers, p, Config()))
    one_pass = growth(lambda p: server._rows_in_one_pass(github, headers, p, Config(), lambda: None)[0])
    assert one_pass < 0.6 * plain, (one_pass, plain)
    print(f"traced growth while the rows are made: one pass {one_pass}, plain list {plain}")
