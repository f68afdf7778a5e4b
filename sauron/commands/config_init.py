"""`sauron config init --detect`: the agent configuration and slice catalog
of this Open5GS host, written from what runs on it, and whether they load
as written."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from sauron.agent.config import ConfigError, load_config
from sauron.catalog import CatalogError, load_catalog
from sauron.commands.detected_files import agent_text, catalog_text
from sauron.commands.open5gs_detect import detect

#: exit codes: written and loading; written with gaps to fill; not written
COMPLETE, INCOMPLETE, NOT_WRITTEN = 0, 1, 2


def init_detected(
    output: Path, catalog_output: Path, port: int, force: bool, err: TextIO = sys.stderr
) -> int:
    """Detects, writes both files, says on `err` what was found and what was
    not; the exit code says whether the configuration loads as written."""
    if os.geteuid() != 0:
        print(
            "sauron config init: not root: other users' processes, namespaces and files "
            "may not be readable",
            file=err,
        )
    found = detect()
    for line in found.found:
        print(f"found: {line}", file=err)
    for line in found.missing:
        print(f"not found: {line}", file=err)
    catalog_written = catalog_text(found)
    relative = os.path.relpath(catalog_output.resolve(), output.resolve().parent)
    config_written = agent_text(found, relative if found.slices else None, port)
    for path in (output, catalog_output):
        if path.exists() and not force:
            print(
                f"sauron config init: {path} exists: not replaced (--force replaces it)", file=err
            )
            return NOT_WRITTEN
    for path, text in ((catalog_output, catalog_written), (output, config_written)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {output} and {catalog_output}", file=err)
    problems: list[str] = []
    if not found.slices:
        problems.append(f"{catalog_output}: no slice: fill in the commented-out ones")
    else:
        try:
            load_catalog(catalog_output)
        except CatalogError as exc:
            problems += str(exc).splitlines()
    try:
        load_config(output)
    except ConfigError as exc:
        problems += str(exc).splitlines()
    if problems or found.missing:
        for line in problems:
            print(f"to fill in: {line}", file=err)
        print(
            "complete the commented-out lines, then: sauron config check " + str(output), file=err
        )
        return INCOMPLETE if problems else COMPLETE
    print(f"next: sauron config check {output}, then sauron run --config {output}", file=err)
    return COMPLETE
