"""Locating the C sources (package data in sauron/bpf/c/) and assembling them
into one text for bcc.

bcc rewrites map helper calls (``events.lookup(&key)``) and creates maps only
for code in the text it is handed, not in files that text includes. The
project's own quoted includes are therefore inlined here, each file once (the
headers' include guards stay harmless); system headers stay as includes.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

_QUOTED_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')


def c_dir() -> Path:
    """sauron/bpf/c/ as installed (a wheel carries it), or $SAURON_C_DIR."""
    override = os.environ.get("SAURON_C_DIR")
    if override:
        return Path(override)
    return Path(str(resources.files("sauron") / "bpf" / "c"))


def source_path(name: str) -> Path:
    """A program's source by its file name, in whichever folder of c/ holds
    it (datapath, diagnosis, energy, n4, probes)."""
    found = [p for p in c_dir().glob(f"*/{name}") if p.parent.name != "include"]
    if len(found) != 1:
        raise FileNotFoundError(f"{c_dir()}: {len(found)} sources named {name!r}")
    return found[0]


def include_dir() -> Path:
    return c_dir() / "include"


def shared_header() -> Path:
    return include_dir() / "sauron_shared.h"


def energy_header() -> Path:
    return include_dir() / "sauron_energy.h"


def diagnosis_header() -> Path:
    return include_dir() / "sauron_diagnosis.h"


def _expand(path: Path, seen: set[Path], out: list[str]) -> None:
    out.append(f'#line 1 "{path.name}"')
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _QUOTED_INCLUDE.match(line)
        if not match:
            out.append(line)
            continue
        name = match.group(1)
        candidate = path.parent / name
        if not candidate.exists():
            candidate = include_dir() / name
        if not candidate.exists():
            raise FileNotFoundError(f"{path}:{number}: included file {name!r} not found")
        candidate = candidate.resolve()
        if candidate not in seen:
            seen.add(candidate)
            _expand(candidate, seen, out)
        out.append(f'#line {number + 1} "{path.name}"')


def assemble(sources: list[str]) -> str:
    """One C text made of the named sources, project includes inlined."""
    seen: set[Path] = set()
    out: list[str] = []
    for name in sources:
        path = source_path(name).resolve()
        seen.add(path)
        _expand(path, seen, out)
    return "\n".join(out) + "\n"
