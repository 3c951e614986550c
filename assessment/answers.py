"""Self-assessment answers: one yes/no per capability, from YAML (written by hand or by the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analytics.errors import UserError, yaml_problem
from analytics.user_files import MB, read_user_text
from assessment.model import CAPABILITY_IDS

_YES = {"yes", "y", "true"}
_NO = {"no", "n", "false"}


@dataclass(frozen=True)
class Answer:
    value: bool
    note: str | None = None


def _as_bool(raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _YES | _NO:
        return raw.strip().lower() in _YES
    raise UserError(f"{where}: answer must be yes or no, got {raw!r}")


def parse_answers(raw: Any, source: str) -> dict[str, Answer]:
    if raw is None:
        return {}
    if isinstance(raw, dict) and "answers" in raw:
        raw = raw["answers"]
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected `answers:` mapping capability ids to yes/no")
    out = {}
    for cap_id, value in raw.items():
        where = f"{source}: answers.{cap_id}"
        if cap_id not in CAPABILITY_IDS:
            raise UserError(f"{source}: unknown capability id {cap_id!r} (see data/maturity/model.yaml)")
        if isinstance(value, dict):
            if "answer" not in value:
                raise UserError(f"{where}: a mapping needs an `answer` key")
            note = value.get("note")
            out[cap_id] = Answer(_as_bool(value["answer"], where), str(note) if note is not None else None)
        else:
            out[cap_id] = Answer(_as_bool(value, where))
    return out


def load_answers(path: Path) -> dict[str, Answer]:
    try:
        raw = yaml.safe_load(read_user_text(path, "answers file", limit=4 * MB))
    except yaml.YAMLError as exc:
        raise UserError(f"answers file {path} is not valid YAML: {yaml_problem(exc)}") from None
    return parse_answers(raw, str(path))


def dump_answers(answers: dict[str, Answer]) -> str:
    """The file format the dashboard form writes; round-trips through ``parse_answers``."""
    body: dict[str, Any] = {}
    for cap_id in CAPABILITY_IDS:
        if cap_id in answers:
            a = answers[cap_id]
            body[cap_id] = {"answer": "yes" if a.value else "no", **({"note": a.note} if a.note else {})}
    return yaml.safe_dump({"answers": body}, sort_keys=False)
