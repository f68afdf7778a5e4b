"""The energy estimator's user-space half: RAPL readers on fake sysfs trees
shaped like the real ones (this machine has no RAPL; a pipe stands in for a
perf counter's file descriptor), frequency sources, power profiles, and the
attribution arithmetic: conservation, idle rules, the cap."""

from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import pytest

from sauron.energy import rapl
from sauron.energy.frequency import (
    CPUFREQ,
    CPUINFO,
    HW_COUNTER,
    CycleCounters,
    Frequencies,
    FrequencySource,
)
from sauron.energy.kernel_config import kernel_option
from sauron.energy.model import (
    IntervalWork,
    attribute,
    merge_slice_energy,
    profile_power,
    rapl_power,
    split_by_volume,
)
from sauron.energy.profiles import (
    PowerProfile,
    ProfileError,
    choose_profile,
    load_profile,
    load_profiles,
    profile_json_schema,
    profiles_dir,
)
from sauron.energy.steal import TICKS_PER_SECOND, StealClock, kept_share, without_steal
from sauron.energy.units import Cycles, Hertz, Joules, Seconds

REPO = Path(__file__).resolve().parents[2]


def zone(root: Path, name: str, label: str, energy_uj: int, max_uj: int) -> Path:
    z = root / name
    z.mkdir(parents=True)
    (z / "name").write_text(label + "\n")
    (z / "energy_uj").write_text(f"{energy_uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return z


def test_powercap_adds_packages_and_survives_a_counter_wrap(tmp_path: Path) -> None:
    max_uj = 262_143_328_850
    pkg0 = zone(tmp_path, "intel-rapl:0", "package-0", max_uj - 1_000_000, max_uj)
    zone(tmp_path, "intel-rapl:0:0", "core", 5_000_000, max_uj)  # part of package 0
    pkg1 = zone(tmp_path, "intel-rapl:1", "package-1", 10_000_000, max_uj)
    zone(tmp_path, "intel-rapl-mmio:0", "package-0", 7_000_000, max_uj)  # the same package again
    meter = rapl.Powercap(tmp_path)
    assert meter.packages() == 2
    (pkg0 / "energy_uj").write_text("2500000\n")  # wrapped: 1 J before the wrap, 2.5 J after
    (pkg1 / "energy_uj").write_text("14000000\n")  # 4 J
    assert meter.energy() == pytest.approx(1.0 + 2.5 + 4.0)
    (pkg0 / "energy_uj").write_text("3500000\n")
    assert meter.energy() == pytest.approx(1.0)


def test_rapl_that_reads_zero_is_absent_and_says_why(tmp_path: Path) -> None:
    zone(tmp_path / "powercap", "intel-rapl:0", "package-0", 0, 1000)
    counter, why = rapl.detect(tmp_path / "powercap", tmp_path / "no-perf")
    assert counter is None
    assert "non-zero energy" in why and "energy-pkg" in why


def _pipe_counter(values: list[int]) -> int:
    """A file descriptor that reads like a perf counter (8 bytes a read)."""
    read_end, write_end = os.pipe()
    for v in values:
        os.write(write_end, struct.pack("<Q", v))
    os.close(write_end)
    return read_end


def test_perf_power_scales_counts_to_joules(tmp_path: Path) -> None:
    pmu = tmp_path / "power"
    (pmu / "events").mkdir(parents=True)
    (pmu / "type").write_text("23\n")
    (pmu / "cpumask").write_text("0,2\n")
    (pmu / "events" / "energy-pkg").write_text("event=0x02\n")
    (pmu / "events" / "energy-pkg.scale").write_text("2.3283064365386962890625e-10\n")
    opened: list[tuple[int, int, int]] = []
    unit = 2**32  # one joule in counts at that scale

    def opener(type_: int, config: int, cpu: int) -> int:
        opened.append((type_, config, cpu))
        return _pipe_counter([unit * 10, unit * 13])

    meter = rapl.PerfPower(pmu, opener)
    assert opened == [(23, 2, 0), (23, 2, 2)] and meter.packages() == 2
    assert meter.energy() == pytest.approx(6.0)  # 3 J on each package
    meter.close()


def test_frequency_sources_in_order(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2445.422\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2000.000\n\n"
    )
    sysfs = tmp_path / "cpu"
    source = FrequencySource(2, cpu_root=sysfs, cpuinfo=cpuinfo, try_hardware=False)
    f = source.frequencies([0, 0])
    assert f.source == CPUINFO and f.per_cpu == [2445.422e6, 2000e6]
    for cpu, khz in ((0, 3_000_000), (1, 1_500_000)):
        d = sysfs / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_cur_freq").write_text(f"{khz}\n")
    f = source.frequencies([0, 0])
    assert f.source == CPUFREQ and f.per_cpu == [3e9, 1.5e9]


def test_hardware_cycles_give_the_real_clock() -> None:
    """No PMU here: pipes stand in for the per-CPU cycle counters."""
    readings = {0: [1_000, 1_000 + 3_000_000_000], 1: [0, 500_000_000]}
    counters = CycleCounters(2, open_counter=lambda cpu: _pipe_counter(readings[cpu]))
    source = FrequencySource(2, counters=counters, cpuinfo=Path("/proc/cpuinfo"))
    f = source.frequencies([1_000_000_000, 250_000_000])  # busy ns in the interval
    assert f.source == HW_COUNTER
    assert f.per_cpu == [pytest.approx(3e9), pytest.approx(2e9)]
    source.close()


def test_profiles_load_match_and_keep_their_schema() -> None:
    profiles = load_profiles()
    names = {p.name for p in profiles}
    assert "generic" in names and len(names) == len(profiles)
    schema = json.loads((profiles_dir() / "schema.json").read_text())
    assert schema == profile_json_schema()  # the file is the model's, not a copy kept by hand
    chosen, why = choose_profile(profiles, "AMD EPYC 7763 64-Core Processor")
    assert chosen.name == "amd-epyc-7763" and "matches" in why
    chosen, why = choose_profile(profiles, "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz")
    assert chosen.name == "intel-xeon-gold-6338"
    chosen, why = choose_profile(profiles, "AMD EPYC")  # a VM hiding the model
    assert chosen.name == "generic" and "generic default" in why
    with pytest.raises(ProfileError, match="no profile named 'nope'"):
        choose_profile(profiles, "x", forced="nope")


def test_a_bad_profile_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nmodel_pattern: x\nidle_w: 200\nmax_w: 100\ncores: 4\nthreads: 8\n"
        "nominal_mhz: 2000\nsource: test\n"
    )
    with pytest.raises(ProfileError) as err:
        load_profile(bad)
    assert str(bad) in str(err.value) and "idle_w (200.0) must be below max_w" in str(err.value)
    bad.write_text("name: bad\nmodel_pattern: x\nidle_w: 1\nmax_w: 2\ncores: 4\n")
    with pytest.raises(ProfileError, match=r"field threads: missing \(it is required\)"):
        load_profile(bad)


PROFILE = PowerProfile(
    name="test",
    model_pattern="x",
    idle_w=40,
    max_w=200,
    cores=8,
    threads=16,
    nominal_mhz=2000,
    source="test",
)
GHZ2 = Frequencies("test", [Hertz(2e9), Hertz(2e9)])


def work(**changes: object) -> IntervalWork:
    base = IntervalWork(
        seconds=Seconds(1.0),
        busy_ns=[600_000_000, 400_000_000],
        stolen_ns=[0, 0],
        softirq_ns=[100_000_000, 50_000_000],
        # CPU 0's softirqs received only Sauron's packets, 80 ms of its 100 ms
        # the stack's work on them; CPU 1's 60 others beside its 40, 20 ms on
        # Sauron's, 20 ms on the others, 10 ms no packet's
        sauron_rx_ns=[80_000_000, 20_000_000],
        other_rx_ns=[0, 20_000_000],
        sauron_rx_packets=[400, 40],
        rx_packets=[400, 100],
        received=[{"unclassified": 0, "embb": 300, "urllc": 100}, {"embb": 10, "urllc": 30}],
        watched_ns={0: [200_000_000, 0], 1: [0, 100_000_000]},
        watch_slice={0: "embb"},  # watch 1 is shared
        program_ns={0: 10_000_000, 1: 2_000_000},
        observer_ns=1_000_000,
        packets={0: {"unclassified": 0, "embb": 300, "urllc": 100}, 1: {"embb": 10, "urllc": 30}},
        traffic={"embb": (310, 310_000_000), "urllc": (130, 0)},
    )
    for k, v in changes.items():
        setattr(base, k, v)
    return base


SLICES = ["unclassified", "embb", "urllc"]


def conserved(node_joules: float, slices: dict[str, object], unattributed: float) -> bool:
    total = sum(s.joules for s in slices.values()) + unattributed  # type: ignore[attr-defined]
    return abs(total - node_joules) <= 1e-12 * max(1.0, node_joules)


@pytest.mark.parametrize("rule", ["none", "proportional", "equal"])
def test_profile_attribution_conserves_energy(rule: str) -> None:
    w = work()
    busy = Cycles(sum(w.busy_ns) * 2.0)
    power = profile_power(PROFILE, busy, cpus=2, seconds=w.seconds)
    node, slices = attribute(w, GHZ2, power, SLICES, rule)  # type: ignore[arg-type]
    per_cycle = 10.0 / 2e9  # (200 - 40) W / 16 threads at 2 GHz
    assert power.joules_per_cycle == pytest.approx(per_cycle)
    assert node.dynamic_joules == pytest.approx(2e9 * per_cycle)  # 1 s of busy CPU
    assert node.idle_joules == pytest.approx(2 * 40 / 16)
    assert conserved(node.joules, slices, node.unattributed_joules)
    # softirq: CPU 0's all Sauron's (80 ms on its packets, the 20 ms no
    # packet's in the share of the packets' work: all), 300 of its 400
    # embb's; CPU 1's 20 ms on Sauron's packets and half the 10 ms no
    # packet's (20 of the 40 ms on packets), 10 of those 40 embb's; the rest
    # of CPU 1's is the node's
    sauron_cpu1 = 20e6 + 10e6 * 0.5
    embb_softirq = 100e6 * 2.0 * 300 / 400 + sauron_cpu1 * 2.0 * 10 / 40
    assert slices["embb"].cycles_softirq == pytest.approx(embb_softirq)
    assert node.cycles_softirq_node == pytest.approx((50e6 - sauron_cpu1) * 2.0)
    assert (node.softirq_packets, node.softirq_packets_sauron) == (500, 440)
    # processes shared by packets: embb 310 of 440 overall
    assert slices["embb"].cycles_process == pytest.approx(400e6 + 200e6 * 310 / 440)
    assert slices["urllc"].cycles_process == pytest.approx(200e6 * 130 / 440)
    assert slices["embb"].cycles_bpf == pytest.approx(20e6 * 0.75 + 4e6 * 0.25)
    embb_dynamic = (embb_softirq + 400e6 + 200e6 * 310 / 440) * per_cycle
    assert slices["embb"].dynamic_joules == pytest.approx(embb_dynamic)
    if rule == "none":
        assert all(s.idle_joules == 0 for s in slices.values())
    elif rule == "equal":
        assert slices["urllc"].idle_joules == pytest.approx(node.idle_joules / 3)
    else:
        share = slices["embb"].dynamic_joules / sum(s.dynamic_joules for s in slices.values())
        assert slices["embb"].idle_joules == pytest.approx(node.idle_joules * share)
    assert slices["embb"].joules_per_gb == pytest.approx(slices["embb"].joules / 0.31)
    assert slices["urllc"].joules_per_gb is None  # no bytes: no figure, not infinity
    assert slices["urllc"].microjoules_per_packet == pytest.approx(
        slices["urllc"].joules * 1e6 / 130
    )


def test_rapl_attribution_calibrates_per_cycle_and_conserves() -> None:
    w = work()
    busy = Cycles(sum(w.busy_ns) * 2.0)
    power = rapl_power(Joules(90.0), "rapl powercap", "fake", PROFILE, 1, busy, w.seconds)
    assert power.idle == 40.0 and power.dynamic == 50.0
    assert power.joules_per_cycle == pytest.approx(50.0 / 2e9)
    node, slices = attribute(w, GHZ2, power, SLICES, "proportional")
    assert node.joules == 90.0
    assert conserved(node.joules, slices, node.unattributed_joules)
    # measured less than the profile's idle: all of it is idle, none dynamic
    low = rapl_power(Joules(10.0), "rapl powercap", "fake", PROFILE, 1, busy, w.seconds)
    assert low.idle == 10.0 and low.dynamic == 0.0
    node, slices = attribute(w, GHZ2, low, SLICES)
    assert conserved(node.joules, slices, node.unattributed_joules)


def test_the_data_volume_split_gives_the_attributed_energy_by_n3_octets() -> None:
    """The second method splits what the CPU-time method attributed, by
    each slice's share of the N3 octets: the shares are the volumes'
    exactly, and the slices' joules add up to the node's attributed joules."""
    w = work()
    power = profile_power(PROFILE, Cycles(sum(w.busy_ns) * 2.0), cpus=2, seconds=w.seconds)
    node, slices = attribute(w, GHZ2, power, SLICES, "proportional")
    octets = {"unclassified": 0, "embb": 3_000_000, "urllc": 1_000_000}
    split_by_volume(node, slices, octets)
    assert {n: e.n3_octets for n, e in slices.items()} == octets
    assert {n: e.volume_share for n, e in slices.items()} == {
        "unclassified": 0.0,
        "embb": 0.75,
        "urllc": 0.25,
    }
    assert slices["embb"].volume_joules == node.attributed_joules * 0.75
    assert slices["urllc"].volume_joules == node.attributed_joules * 0.25
    total = sum(e.volume_joules for e in slices.values())
    assert total == pytest.approx(node.attributed_joules, rel=1e-15)
    # the CPU-time figures stay as they were
    assert slices["embb"].joules != slices["embb"].volume_joules
    # over two intervals the amounts add up
    merged = merge_slice_energy([slices["embb"], slices["embb"]], 2.0)
    assert (merged.n3_octets, merged.volume_joules) == (6_000_000, 2 * slices["embb"].volume_joules)


def test_no_n3_volume_splits_nothing() -> None:
    w = work()
    power = profile_power(PROFILE, Cycles(sum(w.busy_ns) * 2.0), cpus=2, seconds=w.seconds)
    node, slices = attribute(w, GHZ2, power, SLICES)
    split_by_volume(node, slices, {})
    assert all(e.volume_joules == 0 and e.volume_share == 0 for e in slices.values())


def test_slices_never_get_more_than_the_node() -> None:
    # measured work above the node's busy time (windows read a moment apart)
    w = work(busy_ns=[100_000_000, 0])
    power = profile_power(PROFILE, Cycles(2e8), cpus=2, seconds=w.seconds)
    node, slices = attribute(w, GHZ2, power, SLICES, "none")
    assert node.capped
    assert sum(s.dynamic_joules for s in slices.values()) == pytest.approx(node.dynamic_joules)
    assert node.unattributed_joules >= -1e-12
    assert conserved(node.joules, slices, node.unattributed_joules)


def test_other_traffic_on_the_node_is_charged_to_no_slice() -> None:
    """Unrelated traffic triples CPU 0's softirq time with cheap packets,
    ten for each of Sauron's: the slices' softirq cycles stay what they
    were; the others' work and their share of the time no packet owns is
    the node's; a CPU whose softirqs received none of Sauron's packets gives
    the slices nothing."""
    power = profile_power(PROFILE, Cycles(2e9), cpus=2, seconds=Seconds(1.0))
    _, quiet = attribute(work(), GHZ2, power, SLICES)
    node, loaded = attribute(
        work(
            softirq_ns=[300_000_000, 300_000_000],
            sauron_rx_ns=[80_000_000, 0],
            other_rx_ns=[200_000_000, 300_000_000],
            sauron_rx_packets=[400, 0],
            rx_packets=[4400, 5000],
            received=[{"embb": 300, "urllc": 100}, {}],
        ),
        GHZ2,
        power,
        SLICES,
    )
    # CPU 0: 80 ms on Sauron's packets, and 80 / 280 of the 20 ms no packet's
    sauron_cpu0 = 80e6 + 20e6 * 80 / 280
    assert loaded["embb"].cycles_softirq == pytest.approx(sauron_cpu0 * 2.0 * 300 / 400)
    assert loaded["embb"].cycles_softirq < quiet["embb"].cycles_softirq
    assert node.cycles_softirq_node == pytest.approx((600e6 - sauron_cpu0) * 2.0)
    assert conserved(node.joules, loaded, node.unattributed_joules)


def test_packets_not_told_by_their_link_split_the_softirq_by_their_numbers() -> None:
    """Without the running kernel's offsets the probe cannot tell a
    packet's link: each CPU's softirq time goes to the slices in the share
    of its received packets that Sauron's programs handled."""
    power = profile_power(PROFILE, Cycles(2e9), cpus=2, seconds=Seconds(1.0))
    node, slices = attribute(
        work(sauron_rx_ns=[0, 0], other_rx_ns=[0, 0], sauron_rx_packets=[0, 0]),
        GHZ2,
        power,
        SLICES,
    )
    embb = 100e6 * 2.0 * 300 / 400 + 50e6 * 2.0 * 40 / 100 * 10 / 40
    assert slices["embb"].cycles_softirq == pytest.approx(embb)
    assert node.cycles_softirq_unowned == pytest.approx(150e6 * 2.0)
    assert node.cycles_softirq_node == pytest.approx(50e6 * 2.0 * 0.6)


def test_no_packets_leaves_shared_time_unattributed() -> None:
    w = work(packets={0: {}, 1: {}}, received=[{}, {}], watch_slice={})
    power = profile_power(PROFILE, Cycles(2e9), cpus=2, seconds=w.seconds)
    node, slices = attribute(w, GHZ2, power, SLICES)
    assert all(s.joules == 0 for s in slices.values())
    assert node.unattributed_joules == pytest.approx(node.joules)


def test_the_repository_profiles_are_all_valid() -> None:
    for path in sorted((REPO / "energy").glob("*.yaml")):
        load_profile(path)


def test_steal_is_read_per_cpu_and_taken_out_of_busy_time(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  100 0 50 9000 3 0 7 30 0 0\n"
        "cpu0 50 0 25 4500 1 0 3 10 0 0\n"
        "cpu1 50 0 25 4500 2 0 4 20 0 0\n"
        "intr 12345\n"
    )
    clock = StealClock(2, stat)
    tick_ns = 1_000_000_000 // TICKS_PER_SECOND
    assert clock.absent == "" and clock.read() == [10 * tick_ns, 20 * tick_ns]
    # 100 ms of CPU 0's 400 ms busy were stolen; CPU 1's steal exceeds what
    # the probe saw busy (a tick's resolution), so all of it is taken
    busy, stolen, kept = without_steal([400_000_000, 5_000_000], [100_000_000, 10_000_000])
    assert busy == [300_000_000, 0] and stolen == [100_000_000, 5_000_000]
    assert kept == [0.75, 0.0]
    assert kept_share([200_000_000, 4_000_000], kept) == [150_000_000, 0]


def test_no_steal_column_is_said() -> None:
    clock = StealClock(2, Path("/nonexistent/stat"))
    assert clock.read() is None and "/nonexistent/stat" in clock.absent


def test_kernel_option_read_from_plain_and_gzipped_config(tmp_path: Path) -> None:
    plain = tmp_path / "config-6.1.0"
    plain.write_text("CONFIG_IRQ_TIME_ACCOUNTING=y\nCONFIG_KPROBES=y\n")
    packed = tmp_path / "config.gz"
    packed.write_bytes(gzip.compress(b"# CONFIG_IRQ_TIME_ACCOUNTING is not set\n"))
    assert kernel_option("CONFIG_IRQ_TIME_ACCOUNTING", [plain]) == (True, str(plain))
    assert kernel_option("CONFIG_IRQ_TIME_ACCOUNTING", [packed, plain]) == (False, str(packed))
    known, why = kernel_option("CONFIG_IRQ_TIME_ACCOUNTING", [tmp_path / "absent"])
    assert known is None and "absent" in why
