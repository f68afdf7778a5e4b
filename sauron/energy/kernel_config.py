"""The running kernel's build options, where the kernel publishes them
(/proc/config.gz with IKCONFIG_PROC, or the distribution's /boot/config-*)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path


def config_files(release: str | None = None) -> list[Path]:
    release = release or os.uname().release
    return [Path("/proc/config.gz"), Path(f"/boot/config-{release}")]


def kernel_option(name: str, files: list[Path] | None = None) -> tuple[bool | None, str]:
    """(whether `name` is built in or a module, the file that said so);
    (None, why) when no configuration file can be read."""
    tried = []
    for path in files if files is not None else config_files():
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode()
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            tried.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")
            continue
        for row in text.splitlines():
            if row.startswith(f"{name}="):
                return row.split("=", 1)[1] in ("y", "m"), str(path)
        return False, str(path)
    return None, "; ".join(tried) or "no kernel configuration file"
