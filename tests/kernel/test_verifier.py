"""The kernel's verifier accepts every data-path program, on every hook,
with room to spare: what it walks to accept each one stays well under its
limit, so a new parsing path or a newer compiler does not tip a program
over it. The production build is checked, not the recording one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sauron.bpf import libbpf
from sauron.bpf.loader import ENTRY_POINTS, MEASURE_PROGRAMS, DataPlane

pytestmark = [pytest.mark.kernel]

#: BPF_COMPLEXITY_LIMIT_INSNS (kernel/bpf/verifier.c): instructions the
#: verifier may walk for one program
VERIFIER_LIMIT = 1_000_000
#: the share of it any program may use
ROOM = 0.65

PROGRAMS = [(ep.function, ep.hook) for ep in ENTRY_POINTS] + [
    (m[1], m[2]) for m in MEASURE_PROGRAMS
]


@pytest.fixture(scope="module")
def production() -> Iterator[DataPlane]:
    dp = DataPlane()
    yield dp
    dp.close()


@pytest.mark.parametrize(("function", "hook"), PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_every_program_verifies_with_room_to_spare(
    production: DataPlane, function: str, hook: str
) -> None:
    program = production.function(function, hook)
    walked = libbpf.program_run_stats(int(program.fd)).verified_instructions
    assert 0 < walked <= ROOM * VERIFIER_LIMIT, f"{function}: {walked} instructions walked"
