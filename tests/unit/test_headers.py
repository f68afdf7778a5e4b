"""Each program includes the header of its own job: the data path
sauron_shared.h, the energy probe sauron_energy.h, and neither the other's.
No root, no kernel."""

from __future__ import annotations

from sauron.abi.source import assemble
from sauron.bpf.loader import ENTRY_POINTS, MEASURE_PROGRAMS, TRANSIT_EXPIRY_PROGRAM


def _included(text: str) -> set[str]:
    """The project files an assembled text inlined."""
    return {line.split('"')[1] for line in text.splitlines() if line.startswith("#line 1 ")}


def test_the_data_path_does_not_include_the_energy_header() -> None:
    sources = [ep.source for ep in ENTRY_POINTS]
    sources += [*sorted({m[0] for m in MEASURE_PROGRAMS}), TRANSIT_EXPIRY_PROGRAM[0]]
    included = _included(assemble(sources))
    assert "sauron_shared.h" in included
    assert "sauron_energy.h" not in included


def test_the_energy_probe_includes_only_its_header() -> None:
    included = _included(assemble(["energy.c"]))
    assert "sauron_energy.h" in included
    assert "sauron_shared.h" not in included
