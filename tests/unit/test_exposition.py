"""/metrics as Prometheus and its users read it: `promtool check metrics`
accepts it; every per-slice family carries the one label set of a slice
(slice, snssai, sst, sd); the security checks' counts are the data path's
and the detections opened the detector's, a series for every slice and kind
from the start; each slice's SLA state and each target's are one
series per state with exactly one at 1, the tracker's; the build and the
process are there under the names every exporter uses. Over the agent's
runtime reading a data plane the test feeds. No kernel, no root (promtool
is Debian's, installed by `make setup`)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from fake_data_plane import FakeDataPlane

from sauron import __version__
from sauron.abi import layout
from sauron.abi.kpis import SECURITY_FAMILY, SECURITY_KPIS
from sauron.agent.runtime import AgentRuntime
from sauron.catalog import load_catalog
from sauron.export import open5gs_names, process_metrics
from sauron.export.families import DETECTIONS_FAMILY, SLA_STATES
from sauron.security.detect import SPOOFING_UE, TEID_SCAN, Detector, Observation

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match is not None, line
        labels = dict(LABEL.findall(match.group(2) or ""))
        found.append((match.group(1), labels, float(match.group(3))))
    return found


Tracked = dict[str, tuple[str, dict[str, str]]]


def scan(detector: Detector, source: str, slice_id: int, at: float) -> None:
    """Three unknown TEIDs from `source` within a second: a scan for a
    detector whose threshold is 3."""
    detector.feed(
        [
            Observation(layout.SEC_UNKNOWN_TEID, teid, source, source, slice_id, at, at, 1)
            for teid in (0x500001, 0x500002, 0x500003)
        ],
        at + 1,
    )


def expositions() -> list[tuple[AgentRuntime, str, Tracked]]:
    """The exposition after each of 12 intervals: eMBB's downlink far
    under its 1 Mbit/s minimum for five (a violation opens), then well
    above it (it closes); the uplink of every slice throughout; with the
    security checks on, n frames of eMBB with an unknown TEID in interval
    n, and one scan detected."""
    catalog = load_catalog()
    data = FakeDataPlane(catalog)
    data.security_on = True
    now = [1_800_000_000.0]
    runtime = AgentRuntime(catalog, data, clock=lambda: now[0])
    embb = catalog.get("embb")
    assert embb is not None
    detector = Detector(scan_threshold=3)
    scan(detector, "192.0.2.9", embb.id, now[0])
    runtime.prometheus.detections = lambda: detector.opened
    texts = []
    for n in range(12):
        data.failed_check(embb.id, layout.SEC_UNKNOWN_TEID, n)
        for s in catalog.slices:
            for point in (layout.POINT_N3_INGRESS, layout.POINT_N6_EGRESS):
                data.count(point, s.id, layout.DIR_UPLINK, 10 + n, 200)
        downlink = 5 if n < 5 else 400
        for point in (layout.POINT_N6_INGRESS, layout.POINT_N3_EGRESS):
            data.count(point, embb.id, layout.DIR_DOWNLINK, downlink, 1400)
        now[0] += 1.0
        runtime.engine.tick()
        sla = runtime.engine.sla
        tracked = {s.name: (sla.status(s.name), sla.target_states(s.name)) for s in catalog.slices}
        texts.append((runtime, "".join(runtime.exposition()), tracked))
    return texts


def exposition_after_traffic() -> tuple[AgentRuntime, str]:
    runtime, text, _ = expositions()[-1]
    return runtime, text


def test_promtool_accepts_the_exposition(tmp_path: Path) -> None:
    _, text = exposition_after_traffic()
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_exposition_with_open5gs_names(tmp_path: Path) -> None:
    """With `service.open5gs_metric_names`, Open5GS's UPF families are
    there, one series per slice, and promtool still accepts the whole."""
    runtime, _ = exposition_after_traffic()
    runtime.prometheus.open5gs_names = True
    runtime.engine.tick()  # the engine's families are rendered once per tick
    text = "".join(runtime.exposition())
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = {n for n, _ in open5gs_names_in(text)}
    assert names == {family[0] for family in open5gs_names.FAMILIES}
    slices = {"unclassified", *(s.name for s in runtime.engine.catalog.slices)}
    for family in names:
        assert {labels["slice"] for n, labels in open5gs_names_in(text) if n == family} == slices


def open5gs_names_in(text: str) -> list[tuple[str, dict[str, str]]]:
    return [(n, labels) for n, labels, _ in samples(text) if n.startswith("fivegs_")]


def test_each_link_says_whether_the_kernel_still_holds_it() -> None:
    """What the agent's data path says of its links (here a stand-in for
    AgentDataPath.attached: the kernel side is tests/netns/test_links.py)
    is one series per interface and hook, read at each scrape."""
    runtime, _ = exposition_after_traffic()
    held = [("n3", "xdp", True), ("ogstun", "tcx-ingress", True)]
    runtime.prometheus.attached = lambda: held
    first = {
        (lb["interface"], lb["hook"]): v
        for n, lb, v in samples("".join(runtime.exposition()))
        if n == "sauron_attached"
    }
    assert first == {("n3", "xdp"): 1, ("ogstun", "tcx-ingress"): 1}
    held[1] = ("ogstun", "tcx-ingress", False)  # no tick between: read at the scrape
    text = "".join(runtime.exposition())
    after = {
        (lb["interface"], lb["hook"]): v for n, lb, v in samples(text) if n == "sauron_attached"
    }
    assert after == {("n3", "xdp"): 1, ("ogstun", "tcx-ingress"): 0}
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_open5gs_names_are_off_by_default() -> None:
    _, text = exposition_after_traffic()
    assert open5gs_names_in(text) == []


def test_every_per_slice_series_carries_the_slices_one_label_set() -> None:
    runtime, text = exposition_after_traffic()
    catalog = runtime.engine.catalog
    per_slice = [(n, labels) for n, labels, _ in samples(text) if "slice" in labels]
    families = {
        n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n, _ in per_slice
    }
    assert {
        "sauron_packets_total",
        "sauron_transit_latency_seconds",
        "sauron_sla_state",
        SECURITY_FAMILY,
        DETECTIONS_FAMILY,
    } <= families
    for name, labels in per_slice:
        s = catalog.get(labels["slice"])
        if s is None:  # unclassified: no S-NSSAI
            assert (labels["snssai"], labels["sst"], labels["sd"]) == ("", "", ""), name
            continue
        assert labels["snssai"] == str(s.spec.snssai), (name, labels)
        assert labels["sst"] == str(s.spec.snssai.sst), (name, labels)
        sd = s.spec.snssai.sd
        assert labels["sd"] == ("" if sd is None else f"{sd:06x}"), (name, labels)


def test_sla_states_are_the_trackers_one_series_each_at_one() -> None:
    seen: set[str] = set()
    for runtime, text, tracked in expositions():
        slice_states: dict[str, dict[str, float]] = defaultdict(dict)
        target_states: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for name, labels, value in samples(text):
            if name == "sauron_sla_state":
                slice_states[labels["slice"]][labels["state"]] = value
            elif name == "sauron_sla_target_state":
                target_states[labels["slice"], labels["target"]][labels["state"]] = value
        assert set(slice_states) == {s.name for s in runtime.engine.catalog.slices}
        for name, states in slice_states.items():
            assert set(states) == set(SLA_STATES)
            status, targets = tracked[name]
            assert {k for k, v in states.items() if v == 1} == ({status} & set(SLA_STATES))
            for target, state in targets.items():
                series = target_states.pop((name, target))
                assert set(series) == set(SLA_STATES)
                assert [k for k, v in series.items() if v == 1] == [state], (name, target)
                seen.add(state)
        assert not target_states, "a target's state the tracker does not know"
    # eMBB's downlink went through every state: a run that only saw one
    # would prove little
    assert seen == set(SLA_STATES), seen


def test_the_build_and_the_process_are_exposed() -> None:
    _, text = exposition_after_traffic()
    found = {n: (labels, v) for n, labels, v in samples(text)}
    assert found["sauron_build_info"] == (
        {"version": __version__, "python": found["sauron_build_info"][0]["python"]},
        1.0,
    )
    assert found["process_resident_memory_bytes"][1] > 10e6
    assert 0 < found["process_start_time_seconds"][1] <= time.time()
    assert found["process_cpu_seconds_total"][1] > 0
    assert 3 <= found["process_open_fds"][1] <= found["process_max_fds"][1]


def test_process_figures_from_a_proc_tree_shaped_like_the_kernels(tmp_path: Path) -> None:
    """A command name with spaces and parentheses must not shift the fields."""
    proc = tmp_path / "proc"
    me = proc / "self"
    (me / "fd").mkdir(parents=True)
    for fd in range(5):
        (me / "fd" / str(fd)).touch()
    fields = ["S"] + ["0"] * 40
    fields[11], fields[12] = "250", "150"  # utime, stime (ticks)
    fields[19], fields[20], fields[21] = "1000", "123456789", "2048"  # start, vsize, rss
    (me / "stat").write_text(f"4242 (py (odd) name) {' '.join(fields)}\n")
    (proc / "stat").write_text("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n")
    (me / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max open files            1024                 524288               files\n"
    )
    got = process_metrics.read(me)
    ticks = os.sysconf("SC_CLK_TCK")
    assert got.cpu_seconds == 400 / ticks
    assert got.virtual_bytes == 123456789
    assert got.resident_bytes == 2048 * os.sysconf("SC_PAGE_SIZE")
    assert got.start_time_s == 1700000000 + 1000 / ticks
    assert (got.open_fds, got.max_fds) == (5, 1024)


def by_slice_and_kind(text: str, family: str) -> dict[tuple[str, str], float]:
    return {(lb["slice"], lb["kind"]): v for n, lb, v in samples(text) if n == family}


def test_security_counts_are_the_data_paths_per_slice_and_kind() -> None:
    """Every kind of every slice, each the engine's latest reading of the
    data path's counter (0+1+...+11 unknown TEIDs for eMBB), the HELP
    telling each kind."""
    runtime, text = exposition_after_traffic()
    catalog = runtime.engine.catalog
    counters = runtime.engine.counters
    expected = {
        (catalog.name_of(sid), kpi.name): counters.security_count(sid, kind)
        for sid in (0, *(s.id for s in catalog.slices))
        for kind, kpi in enumerate(SECURITY_KPIS)
    }
    assert by_slice_and_kind(text, SECURITY_FAMILY) == expected
    assert expected[("embb", "unknown_teid")] == sum(range(12))
    (help_line,) = [x for x in text.splitlines() if x.startswith(f"# HELP {SECURITY_FAMILY} ")]
    assert all(f"{k.name}: {k.help}" in help_line for k in SECURITY_KPIS)
    assert f"# TYPE {SECURITY_FAMILY} counter" in text


def test_security_series_exist_from_zero_once_the_checks_are_on() -> None:
    """Checks never on: no family. On: a zero series for every slice and
    kind before any frame failed, so the first one is an increase."""
    catalog = load_catalog()
    data = FakeDataPlane(catalog)
    now = [1_800_000_000.0]
    runtime = AgentRuntime(catalog, data, clock=lambda: now[0])
    now[0] += 1
    runtime.engine.tick()
    text = "".join(runtime.exposition())
    assert SECURITY_FAMILY not in text and DETECTIONS_FAMILY not in text
    data.security_on = True
    now[0] += 1
    runtime.engine.tick()
    got = by_slice_and_kind("".join(runtime.exposition()), SECURITY_FAMILY)
    slices = {"unclassified", *(s.name for s in catalog.slices)}
    assert got == {(name, k.name): 0 for name in slices for k in SECURITY_KPIS}


def test_detections_opened_are_the_detectors_read_at_each_scrape(tmp_path: Path) -> None:
    runtime, text = exposition_after_traffic()
    catalog = runtime.engine.catalog
    embb = catalog.get("embb")
    assert embb is not None
    slices = {"unclassified", *(s.name for s in catalog.slices)}
    zeros = {(name, kind): 0 for name in slices for kind in (TEID_SCAN, SPOOFING_UE)}
    assert by_slice_and_kind(text, DETECTIONS_FAMILY) == {**zeros, ("embb", TEID_SCAN): 1}
    # a second scan, no tick between: the next scrape has it
    detector = Detector(scan_threshold=3)
    scan(detector, "192.0.2.9", embb.id, 1_800_000_000.0)
    scan(detector, "192.0.2.10", embb.id, 1_800_000_000.0)
    runtime.prometheus.detections = lambda: detector.opened
    text = "".join(runtime.exposition())
    assert by_slice_and_kind(text, DETECTIONS_FAMILY) == {**zeros, ("embb", TEID_SCAN): 2}
    assert dict(detector.opened) == {(embb.id, TEID_SCAN): 2}
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
