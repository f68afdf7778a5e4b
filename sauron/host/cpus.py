"""The node's CPUs as the kernel lists them."""

from __future__ import annotations

from pathlib import Path


def online_cpus(path: Path = Path("/sys/devices/system/cpu/online")) -> set[int] | None:
    """The online CPUs ("0-3,6"), or None when the file cannot be read."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus
