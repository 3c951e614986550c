"""The shipped maturity model and answers files: structure, fixed ids, round trips, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analytics.errors import UserError
from analytics.paths import data_dir
from assessment.answers import Answer, dump_answers, load_answers, parse_answers
from assessment.model import CAPABILITY_IDS, load_model, parse_model


def test_shipped_model_has_the_fixed_ids_and_texts() -> None:
    model = load_model()
    assert [lvl.name for lvl in model.levels] == [
        "Prerequisites",
        "Core GitOps",
        "Enterprise GitOps",
        "Scaled GitOps",
    ]
    assert [c.id for c in model.capabilities] == list(CAPABILITY_IDS)
    assert [len(lvl.capabilities) for lvl in model.levels] == [5, 5, 5, 5]
    assert all(lvl.benefits for lvl in model.levels)
    assert all(c.question.endswith("?") and c.action and c.evidence for c in model.capabilities)
    assert [p.name for p in model.principles] == [
        "Declarative",
        "Versioned and Immutable",
        "Pulled Automatically",
        "Continuously Reconciled",
    ]
    assert model.capability("multi-cloud").level == 3


def test_a_renamed_capability_is_rejected(tmp_path: Path) -> None:
    raw = yaml.safe_load((data_dir() / "maturity" / "model.yaml").read_text())
    raw["levels"][1]["capabilities"][2]["id"] = "secrets"
    bad = tmp_path / "model.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match=rf"^{bad}: capability ids must be exactly declarative-iac, "):
        load_model(bad)
    with pytest.raises(UserError, match="levels must be listed in order"):
        parse_model({"levels": [{"level": 1}]}, "m.yaml")


def test_answers_example_and_round_trip() -> None:
    example = load_answers(data_dir() / "maturity" / "answers.example.yaml")
    assert example["declarative-iac"] == Answer(True)
    assert example["progressive-delivery"].value is False
    assert example["secrets-management"].note is not None
    assert parse_answers(yaml.safe_load(dump_answers(example)), "x") == example


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"answers": {"version-control": "maybe"}},
            "f.yaml: answers.version-control: answer must be yes or no, got 'maybe'",
        ),
        (
            {"answers": {"version-control": {"note": "x"}}},
            "f.yaml: answers.version-control: a mapping needs an `answer` key",
        ),
        ({"answers": ["version-control"]}, "f.yaml: expected `answers:` mapping capability ids to yes/no"),
    ],
)
def test_bad_answers(raw: object, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_answers(raw, "f.yaml")
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "said"), [
    ("answers:\n  version-control: [yes,\n", "line 3: expected the node content, but found '<stream end>'"),
    ('answers:\n  version-control: "unterminated\n', "line 3: found unexpected end of stream"),
    ("answers:\n  a: 1\n b: 2\n", "line 3: expected <block end>, but found '<block mapping start>'"),
])
def test_a_malformed_answers_or_model_file_names_the_line_and_the_problem(
        tmp_path: Path, text: str, said: str) -> None:
    """Not PyYAML's first line, which says only where parsing stood ("while parsing a flow
    sequence"), and never its excerpt of the file: one line, with the line number."""
    bad = tmp_path / "answers.yaml"
    bad.write_text(text)
    with pytest.raises(UserError) as info:
        load_answers(bad)
    assert str(info.value) == f"answers file {bad} is not valid YAML: {said}"
    load_model.cache_clear()
    with pytest.raises(UserError) as info:
        load_model(bad)
    assert str(info.value) == f"maturity model {bad} is not valid YAML: {said}"
    assert "\n" not in str(info.value)
