"""The agent's saved reading across restarts (sauron.agent.checkpoint) and
the engine starting from it: the first interval after a restart covers
the time no agent ran, its counts exactly what the data path counted
since the last agent's last interval."""

from __future__ import annotations

import time
from pathlib import Path

from fake_data_plane import FakeDataPlane

from sauron.abi import layout
from sauron.agent.checkpoint import Checkpoint
from sauron.bpf.maps import DataPlaneCounters
from sauron.catalog import load_catalog
from sauron.energy.model import NodeEnergy, SliceEnergy
from sauron.kpi.engine import KpiEngine

UL = layout.DIR_UPLINK
N3_IN = layout.POINT_N3_INGRESS
N6_OUT = layout.POINT_N6_EGRESS


def test_a_saved_reading_comes_back_for_its_own_build_only(tmp_path: Path) -> None:
    catalog = load_catalog(None)
    fake = FakeDataPlane(catalog)
    fake.count(N3_IN, 1, UL, 7, 100)
    saved = Checkpoint(tmp_path / "state" / "checkpoint", "build-a:12")
    saved.save(fake.read(), 1000.0)
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "checkpoint").stat().st_mode & 0o777 == 0o600
    reading = Checkpoint(tmp_path / "state" / "checkpoint", "build-a:12").load()
    assert reading is not None and reading.at == 1000.0
    assert reading.counters.slice(N3_IN, 1, UL).packets == 7
    # the same build with other maps (rebuilt after a detach), another build
    assert Checkpoint(tmp_path / "state" / "checkpoint", "build-a:13").load() is None
    assert Checkpoint(tmp_path / "state" / "checkpoint", "build-b:12").load() is None
    saved.remove()
    assert saved.load() is None


def test_a_torn_or_foreign_file_is_no_reading(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    path.write_bytes(b"\x80\x05not a pickle at all")
    assert Checkpoint(path, "b:1").load() is None
    path.write_bytes(b"")
    assert Checkpoint(path, "b:1").load() is None


def test_the_first_interval_after_a_restart_covers_the_gap(tmp_path: Path) -> None:
    """1 000 frames before the stop (reported), 1 000 while no agent ran,
    1 000 after the start: the restarted engine's first interval holds the
    2 000 since the last reported interval, over the whole time since."""
    catalog = load_catalog(None)
    slice_id = catalog.slices[0].id
    fake = FakeDataPlane(catalog)
    now = [100.0]
    first = KpiEngine(catalog, fake.read, clock=lambda: now[0])

    def thousand_through() -> None:
        fake.count(N3_IN, slice_id, UL, 1000, 100)
        fake.count(N6_OUT, slice_id, UL, 1000, 92)

    thousand_through()
    now[0] = 101.0
    before = first.tick()
    assert before.slices[catalog.slices[0].name].uplink.packets_in == 1000
    checkpoint = Checkpoint(tmp_path / "checkpoint", "b:1")
    checkpoint.save(first.counters, before.time)
    # the agent dies; the data path counts on
    thousand_through()
    now[0] = 130.0
    thousand_through()
    reading = Checkpoint(tmp_path / "checkpoint", "b:1").load()
    assert reading is not None
    second = KpiEngine(
        catalog, fake.read, clock=lambda: now[0], baseline=(reading.counters, reading.at)
    )
    now[0] = 131.0
    after = second.tick()
    kpis = after.slices[catalog.slices[0].name].uplink
    assert (kpis.packets_in, kpis.packets_out) == (2000, 2000)
    assert after.interval_s == 30.0
    assert kpis.pps == 2000 / 30.0


def test_saving_costs_one_small_file(tmp_path: Path) -> None:
    """Every interval replaces the file whole: no partial file is ever seen
    where the reading belongs."""
    catalog = load_catalog(None)
    fake = FakeDataPlane(catalog)
    checkpoint = Checkpoint(tmp_path / "checkpoint", "b:1")
    for i in range(3):
        fake.count(N3_IN, 1, UL, 1, 100)
        checkpoint.save(fake.read(), time.time() - 10 + i)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]
    reading = checkpoint.load()
    assert reading is not None and reading.counters.slice(N3_IN, 1, UL).packets == 3


class RecordingMeter:
    """The energy meter's seam (measure) recording what it was asked: the
    real meter reads the kernel's CPU times, which a unit test has not."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, dict[str, tuple[int, int]]]] = []

    def measure(
        self, before: DataPlaneCounters, now: DataPlaneCounters, traffic: dict[str, tuple[int, int]]
    ) -> tuple[NodeEnergy, dict[str, SliceEnergy]]:
        packets = sum(
            now.slice(N3_IN, s, UL).packets - before.slice(N3_IN, s, UL).packets
            for s in range(1, 4)
        )
        self.asked.append((packets, traffic))
        return NodeEnergy(joules=1.0), {}


def test_the_energy_of_the_first_interval_after_a_restart_says_what_it_missed() -> None:
    """No agent measured CPU time while none ran: the first interval after a
    restart counts every frame since the last agent's reading, but its
    energy covers only the time since the start, with the frames of that
    time, and says how long it did not measure."""
    catalog = load_catalog(None)
    slice_id = catalog.slices[0].id
    fake = FakeDataPlane(catalog)
    fake.count(N3_IN, slice_id, UL, 1000, 100)
    last_reading, last_at = fake.read(), 100.0
    fake.count(N3_IN, slice_id, UL, 1000, 100)  # while no agent ran
    now = [130.0]
    meter = RecordingMeter()
    engine = KpiEngine(
        catalog,
        fake.read,
        clock=lambda: now[0],
        energy=meter,  # type: ignore[arg-type]
        baseline=(last_reading, last_at),
    )
    fake.count(N3_IN, slice_id, UL, 500, 100)  # after the start
    now[0] = 140.0
    first = engine.tick()
    assert first.slices[catalog.slices[0].name].uplink.packets_in == 1500  # since the reading
    assert first.energy is not None and first.energy.unmeasured_seconds == 30.0
    assert any("not measured: the first 30.0 s" in n for n in first.energy.notes)
    packets, traffic = meter.asked[0]
    assert packets == 500  # the frames of the measured time only
    assert traffic[catalog.slices[0].name] == (500, 50_000)
    # the next interval is measured whole
    fake.count(N3_IN, slice_id, UL, 10, 100)
    now[0] = 150.0
    second = engine.tick()
    assert second.energy is not None and second.energy.unmeasured_seconds == 0.0
    assert meter.asked[1][0] == 10
