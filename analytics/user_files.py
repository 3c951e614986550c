"""Reading a text file a user named on the command line or in the environment (the config, an
answers file, a cluster dump, a token file).

``Path.read_text`` reads whatever the path is: ``/dev/zero`` until memory runs out, a FIFO until
someone writes to it, and a file that is not UTF-8 ends in ``UnicodeDecodeError``, which the CLI
can only report as an internal error. Here a path that is not a regular file, a file over its
limit and text that is not UTF-8 are each one line naming the file (the caller's error class, so
the exit code is the input error's), and nothing more than the limit is ever read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from analytics.errors import UserError

MB = 1024 * 1024


def read_user_text(path: Path | str, what: str, *, limit: int,
                   error: type[UserError] = UserError) -> str:
    """The UTF-8 text of the regular file ``path`` (``what`` names it in errors: "config",
    "answers file"), refused beyond ``limit`` bytes."""
    shown = str(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise error(f"cannot read {what} {shown}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {shown} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {shown} is not a regular file (a device, pipe or socket)")
    if st.st_size > limit:
        raise error(f"{what} {shown} is larger than {_size(limit)} ({_size(st.st_size)})")
    try:
        # O_NONBLOCK: a path swapped for a FIFO since the check cannot hang the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {shown}: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} {shown} is larger than {_size(limit)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{what} {shown} is not UTF-8 text (line {line}, byte {exc.start + 1})") from None


def _size(n: int) -> str:
    return f"{n / MB:.0f} MB" if n >= MB else f"{n:,} bytes"
