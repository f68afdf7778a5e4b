"""Reading a file that holds a secret (the API token, the InfluxDB token).
The file must be the agent's own: owned by the user it runs as and closed
to group and others, or whoever else can read it holds the secret too. It
is refused otherwise, naming the mode and the owner; bytes that are not
UTF-8 are refused naming the file, never a traceback."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sauron.host.yamlfile import FileProblems

#: a token is a line: anything much longer is not a token file
MAX_SECRET_FILE_BYTES = 64 * 1024


def read_secret_file(
    path: Path, what: str, error: type[FileProblems], agents_own: bool = True
) -> str:
    """The file's first line, surrounding blanks dropped ("" when empty);
    with agents_own, only from a file that is the agent's own."""
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            problems = ownership_problems(info, what) if agents_own else []
            if problems:
                raise error(path, problems)
            data = f.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise error(path, [f"cannot read the {what}: {exc.strerror}"]) from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise error(path, [f"the {what} is over {MAX_SECRET_FILE_BYTES} bytes: not a token file"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, [f"the {what} is not UTF-8 text (byte {exc.start})"]) from None
    lines = text.splitlines()
    return lines[0].strip() if lines else ""


def ownership_problems(info: os.stat_result, what: str) -> list[str]:
    """Why a file with this status is not the agent's own, if it is not."""
    problems = []
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        problems.append(
            f"the {what} is open to group or others (mode {mode:04o}): "
            "make it the agent's own (chmod 600)"
        )
    if info.st_uid != os.geteuid():
        problems.append(
            f"the {what} belongs to uid {info.st_uid}, the agent runs as uid {os.geteuid()}: "
            "make it the agent's own (chown)"
        )
    return problems
