"""Writing the self-assessment answers YAML that `gitops-dora assess --answers FILE` reads."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

UNANSWERED = "not answered"


def answers_document(answers: Mapping[str, str], notes: Mapping[str, str]) -> str:
    """YAML in the answers-file shape: ``answers: {id: yes|no}`` or ``{answer, note}`` with a note."""
    body: dict[str, object] = {}
    for cap_id, answer in answers.items():
        if answer == UNANSWERED:
            continue
        note = (notes.get(cap_id) or "").strip()
        body[cap_id] = {"answer": answer, "note": note} if note else answer
    header = ("# Self-assessment answers written by the gitops-dora dashboard.\n"
              "# Use with: gitops-dora assess PATH --answers THIS_FILE\n")
    return header + yaml.safe_dump({"answers": body}, sort_keys=False, allow_unicode=True)


def write_atomically(path: Path, text: str) -> None:
    """Temp file in the same folder, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
