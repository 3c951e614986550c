"""The self-assessment answers YAML that `gitops-dora assess --answers FILE` reads: built from the
form, offered as a download, and saved on the server only into the folder the config names
(``dashboard.answers_dir``), under a name the dashboard chooses. A visitor never types a path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import yaml

UNANSWERED = "not answered"
FILE_PREFIX = "maturity-answers-"
DOWNLOAD_NAME = "maturity-answers.yaml"


class AnswersFolderError(Exception):
    """The configured answers folder cannot take the file; the message is one line for the page."""


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


def answers_folder(configured: str | None, config_file: Path | None) -> Path | None:
    """``dashboard.answers_dir`` as an absolute path (relative to the config file's folder); None
    when it is not set, which means download only."""
    if not configured or not configured.strip():
        return None
    folder = Path(configured.strip()).expanduser()
    if not folder.is_absolute():
        base = config_file.resolve().parent if config_file is not None else Path.cwd()
        folder = base / folder
    return folder


def file_name(now: datetime, n: int = 1) -> str:
    """``maturity-answers-YYYYMMDDTHHMMSSZ.yaml`` (UTC), ``-N`` before the suffix on a clash."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{FILE_PREFIX}{stamp}{'' if n == 1 else f'-{n}'}.yaml"


def save_answers(folder: Path, text: str, *, now: datetime | None = None) -> Path:
    """Write ``text`` as a new file directly in ``folder`` and return its path.

    The folder must already exist. The file is written to a temporary name, synced, then
    hard-linked to its final name, so it appears complete or not at all and never replaces a file
    (an existing name, or a symlink planted under it, makes the next ``-N`` name be tried).
    """
    try:
        real = folder.resolve(strict=True)
    except OSError:
        raise AnswersFolderError(f"the answers folder {folder} does not exist") from None
    if not real.is_dir():
        raise AnswersFolderError(f"the answers folder {folder} is not a folder")
    when = now or datetime.now(UTC)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".maturity-answers.", suffix=".tmp", dir=real)
    except OSError as exc:
        raise AnswersFolderError(f"cannot write into {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        for n in range(1, 1000):
            target = real / file_name(when, n)
            if target.parent != real:  # the name is ours, but never let it leave the folder
                raise AnswersFolderError("refusing a file name outside the answers folder")
            try:
                os.link(tmp, target, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                raise AnswersFolderError(f"cannot write {target.name} in {folder}: {exc.strerror}") from None
            return target
        raise AnswersFolderError(f"too many answer files named {file_name(when)} in {folder}")
    finally:
        Path(tmp).unlink(missing_ok=True)
