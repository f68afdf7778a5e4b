"""The data plane compiled in a process of its own, pinned under bpffs and
opened through libbpf alone (sauron.bpf.build, sauron.bpf.pinned): the
agent's way since it no longer compiles. Build once (a real bcc compile in
a child process), run real frames through the pinned programs, and hold
their counts to the in-process build's."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from frames import gtpu
from scapy.layers.inet import IP, UDP

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.build import GEOMETRY_PREFIX, build_in_subprocess, remove_tree
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import read_counters
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.pinned import (
    MAPS,
    PIN_ROOT,
    PROGRAMS,
    PinnedDataPlane,
    build_flags,
    build_identity,
    builds_in,
    every_function,
)
from sauron.bpf.rules import RULE_MAPS, program_catalog
from sauron.catalog import Catalog, parse_catalog

N3_IN = layout.POINT_N3_INGRESS


@pytest.fixture(scope="module")
def pinned_build() -> Iterator[Path]:
    folder = PIN_ROOT / f"test-{secrets.token_hex(3)}"
    try:
        yield build_in_subprocess(folder).build
    finally:
        remove_tree(folder)


def _frames() -> list[bytes]:
    """Uplink G-PDUs of two slices, one of no slice, one not GTP-U."""
    frames = []
    for src, count in (("10.45.0.7", 5), ("10.46.0.9", 3), ("192.0.2.1", 2)):
        inner = IP(src=src, dst="198.51.100.1") / UDP(sport=1000, dport=53) / (b"q" * 40)
        frames += [gtpu(inner, teid=0x100 + count, uplink=True)] * count
    frames.append(bytes(gtpu(IP() / UDP(), teid=1, uplink=True))[:30])  # cut short
    return frames


def _id(catalog: Catalog, name: str) -> int:
    found = catalog.get(name)
    assert found is not None
    return found.id


def _catalog(text: str) -> Catalog:
    return parse_catalog(yaml.safe_load(text), "(test)")


def _run(fd: int, frames: list[bytes]) -> None:
    for frame in frames:
        libbpf.test_run(fd, frame)


def test_a_build_pins_every_map_and_program_for_its_owner_only(pinned_build: Path) -> None:
    assert pinned_build.name == f"build-{build_identity(build_flags())}"
    assert builds_in(pinned_build.parent) == [build_identity(build_flags())]
    assert pinned_build.parent.stat().st_mode & 0o777 == 0o700
    for part in (pinned_build, pinned_build / MAPS, pinned_build / PROGRAMS):
        assert part.stat().st_mode & 0o777 == 0o700, part
    programs = {p.name for p in (pinned_build / PROGRAMS).iterdir()}
    assert programs == {function for function, _ in every_function()}
    maps = {p.name for p in (pinned_build / MAPS).iterdir()}
    assert {"slice_stats", "events", "teid_stats", "config", *RULE_MAPS} <= maps
    assert not list(pinned_build.parent.glob("staging-*")), "a staging folder left"


def test_the_pinned_programs_count_as_the_compiled_ones(
    pinned_build: Path, dataplane: DataPlane, catalog: Catalog
) -> None:
    frames = _frames()
    with PinnedDataPlane(pinned_build) as pinned:
        pinned.reset_counters()
        program_catalog(pinned, catalog)
        apply_settings(pinned, MeasureSettings.off())
        _run(pinned.program_fd(N3_IN), frames)
        _run(dataplane.program_fd(N3_IN), frames)
        ours, theirs = read_counters(pinned), read_counters(dataplane)
    assert ours.events == theirs.events
    assert [bytes(s) for s in ours.slice_stats] == [bytes(s) for s in theirs.slice_stats]
    embb, urllc = _id(catalog, "embb"), _id(catalog, "urllc")
    assert ours.slice(N3_IN, embb, layout.DIR_UPLINK).packets == 5
    assert ours.slice(N3_IN, urllc, layout.DIR_UPLINK).packets == 3
    assert ours.event(N3_IN, layout.EV_FRAMES) == len(frames)
    assert len(ours.teids) == len(theirs.teids) == 3


def test_counts_outlive_every_process_that_held_them(pinned_build: Path, catalog: Catalog) -> None:
    """The build process has exited; a process counts and exits; the next
    one opening the pins finds the counts where they were."""
    with PinnedDataPlane(pinned_build) as pinned:
        pinned.reset_counters()
        program_catalog(pinned, catalog)
    script = (
        "import sys; sys.path.insert(0, 'tests/support')\n"
        "from pathlib import Path\n"
        "from sauron.bpf.pinned import PinnedDataPlane\n"
        "from sauron.bpf import libbpf\n"
        "from frames import gtpu\n"
        "from scapy.layers.inet import IP, UDP\n"
        f"dp = PinnedDataPlane(Path({str(pinned_build)!r}))\n"
        "frame = gtpu(IP(src='10.47.0.3', dst='198.51.100.1') / UDP(), teid=9, uplink=True)\n"
        f"[libbpf.test_run(dp.program_fd({N3_IN}), frame) for _ in range(7)]\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])
    with PinnedDataPlane(pinned_build) as pinned:
        mmtc = _id(catalog, "mmtc")
        assert read_counters(pinned).slice(N3_IN, mmtc, layout.DIR_UPLINK).packets == 7


def test_catalog_rules_are_replaced_in_place(pinned_build: Path) -> None:
    """Rules both catalogs share stay; the old one's others go; a TEID rule
    and a QFI rule the new one adds are there."""
    before = _catalog(
        "slices:\n"
        "  - {name: a, id: 1, snssai: {sst: 1}, ue_subnets: [10.45.0.0/16, 10.50.0.0/16],"
        " teids: [7]}\n"
    )
    after = _catalog(
        "slices:\n"
        "  - {name: a, id: 1, snssai: {sst: 1}, ue_subnets: [10.45.0.0/16], teids: [8],"
        " qfis: [5]}\n"
    )
    with PinnedDataPlane(pinned_build) as pinned:
        program_catalog(pinned, before)
        generation = pinned._config().rules_generation
        program_catalog(pinned, after)
        assert pinned._config().rules_generation == (generation + 1) & 0xFFFFFFFF
        ue4 = {bytes(k) for k in pinned.table("ue4_slice")}
        wanted = layout.Ipv4LpmKey(
            prefixlen=16, addr=int.from_bytes(bytes([10, 45, 0, 0]), "little")
        )
        assert ue4 == {bytes(wanted)}
        teids = {int.from_bytes(k, "little") for k in pinned.table("teid_slice")}
        assert teids == {8}
        qfi = pinned.table("qfi_slice")
        assert bytes(qfi[(5).to_bytes(4, "little")])[:4] == (1).to_bytes(4, "little")
        assert bytes(qfi[(6).to_bytes(4, "little")])[:4] == bytes(4)


def test_another_flag_is_another_build() -> None:
    assert build_identity(build_flags()) != build_identity(build_flags(extra=("-DX=1",)))
    assert build_identity(build_flags()) != build_identity(build_flags(record_last=True))
    assert build_identity(build_flags()) == build_identity(build_flags())


def test_an_upgrade_of_the_same_geometry_counts_on_in_the_same_maps(
    pinned_build: Path, catalog: Catalog
) -> None:
    """A changed program (a test build flag) built to replace the running
    build: its programs count in the running build's maps, so frames
    counted before and after the switch add up; program arrays and scratch
    maps stay each build's own. A build whose geometry differs keeps maps
    of its own and says why."""
    with PinnedDataPlane(pinned_build) as old:
        old.reset_counters()
        program_catalog(old, catalog)
        _run(old.program_fd(N3_IN), _frames())
    built = build_in_subprocess(
        pinned_build.parent, extra=("-DSAURON_UPGRADE_TEST=1",), keep_from=pinned_build
    )
    try:
        assert built.kept_maps and built.build != pinned_build
        with PinnedDataPlane(pinned_build) as old, PinnedDataPlane(built.build) as new:
            for name in ("slice_stats", "events", "teid_stats", "config", "ue4_slice"):
                assert libbpf.map_info(old.map_fd(name)).map_id == (
                    libbpf.map_info(new.map_fd(name)).map_id
                ), name
            for name in ("measure_xdp_prog", "measure_jobs"):
                assert libbpf.map_info(old.map_fd(name)).map_id != (
                    libbpf.map_info(new.map_fd(name)).map_id
                ), name
            _run(new.program_fd(N3_IN), _frames())
            counted = read_counters(new)
        embb = _id(catalog, "embb")
        assert counted.slice(N3_IN, embb, layout.DIR_UPLINK).packets == 10
        assert counted.event(N3_IN, layout.EV_FRAMES) == 2 * len(_frames())
    finally:
        remove_tree(built.build)
    # the running build's recorded geometry made to differ
    (shape,) = pinned_build.glob(f"{GEOMETRY_PREFIX}*")
    shape.rename(pinned_build / f"{GEOMETRY_PREFIX}0")
    try:
        other = build_in_subprocess(
            pinned_build.parent, extra=("-DSAURON_UPGRADE_TEST=2",), keep_from=pinned_build
        )
        assert not other.kept_maps and "geometry changed" in other.why_not
        with PinnedDataPlane(pinned_build) as old, PinnedDataPlane(other.build) as new:
            assert libbpf.map_info(old.map_fd("slice_stats")).map_id != (
                libbpf.map_info(new.map_fd("slice_stats")).map_id
            )
        remove_tree(other.build)
    finally:
        (pinned_build / f"{GEOMETRY_PREFIX}0").rename(shape)
