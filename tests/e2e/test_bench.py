"""`make bench` still works: every section run with tiny sizes (`--quick`),
its figures checked for shape, never for speed. The correctness figures
are checked: the generator's, Sauron's and the user-space capture's per-slice
counts agree, and at the veth's ceiling every frame the N3 program ran on is
in Sauron's counts."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: the stable names docs/performance.md and dashboards quote
STABLE_NAMES = {
    "xdp_n3_ul_gpdu_added_ns",
    "xdp_n3_ul_gpdu_stamped_added_ns",
    "xdp_n3_echo_added_ns",
    "xdp_n3_malformed_added_ns",
    "xdp_n6_dl_ip_added_ns",
    "tc_n3_dl_gpdu_added_ns",
    "tc_n6_ul_ip_added_ns",
    "xdp_n3_ul_gpdu_evidence_added_ns",
    "xdp_n3_ul_gpdu_security_added_ns",
    "xdp_n3_ul_gpdu_security_spoofed_added_ns",
    "xdp_n3_ul_gpdu_security_peers_added_ns",
    "xdp_n3_ul_gpdu_security_unknown_teid_added_ns",
    "xdp_n3_ul_gpdu_security_gtp_in_gtp_added_ns",
    "xdp_n3_ul_gpdu_security_unknown_peer_added_ns",
    "xdp_n3_ul_gpdu_security_protected_added_ns",
    "veth_throughput_ratio",
    "veth_throughput_ratio_tc",
    "veth_throughput_ratio_xdp_generic",
    "veth_throughput_ratio_xdp_native",
    "veth_empty_ratio_tc",
    "veth_empty_ratio_xdp_generic",
    "veth_empty_ratio_xdp_native",
    "generator_ceiling_pps",
    "cpu_per_packet_vs_userspace_ratio",
    "cpu_per_packet_vs_tcpdump_ratio",
    "ceiling_cpu_per_packet_vs_tcpdump_ratio",
    "kernel_cpu_per_packet_vs_empty_ratio",
    "agent_cpu_per_interval_ms",
    "per_slice_counts_agree",
    "agent_startup_s",
    "agent_warm_startup_s",
    "agent_idle_cpu_percent",
    "agent_rss_mb",
    "agent_load_cpu_percent",
    "rest_p50_ms",
    "rest_p99_ms",
    "rest_requests_per_s",
    "rest_open_loop_p99_ms",
    "publisher_points_per_s",
    "scaling_teids_1k_per_packet_ns",
    "scaling_teids_1k_interval_ms",
    "scaling_slices_3_interval_ms",
    "datapath_map_memory_mb",
    "diagnosis_pipe_added_ns_per_switch",
    "diagnosis_futex_added_ns_per_switch",
    "diagnosis_pipe_detached_program_runs",
    "diagnosis_probe_read_us",
}


@pytest.mark.kernel
def test_every_section_runs_and_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = {f["name"]: f for f in json.loads(out.read_text())}
    assert figures.keys() >= STABLE_NAMES, STABLE_NAMES - figures.keys()
    for f in figures.values():
        assert set(f) >= {"name", "value", "unit", "spread", "goal", "machine"}
        assert isinstance(f["value"], int | float) and math.isfinite(f["value"]), f
        assert f["machine"] and "CPUs" in f["machine"]
        if f["goal"] is not None:
            assert f["goal_is"] in ("at_most", "at_least") and isinstance(f["met"], bool)
    assert figures["per_slice_counts_agree"]["value"] == 1.0, figures["per_slice_counts_agree"]
    for run in figures["per_slice_counts_agree"]["detail"]["runs"]:
        assert sum(run["truth"].values()) > 0 and run["truth"] == run["sauron"] == run["capture"]
    # tcpdump saw at least every frame sent (ARP and the like come on top)
    sent = min(
        sum(r["truth"].values()) for r in figures["per_slice_counts_agree"]["detail"]["runs"]
    )
    captured = figures["cpu_per_packet_vs_tcpdump_ratio"]["detail"]["tcpdump_captured"]
    assert captured and min(captured) >= sent, (captured, sent)
    # at the ceiling: the hook's run count is the truth, tcpdump captured something
    assert figures["ceiling_counts_agree"]["value"] == 1.0, figures["ceiling_counts_agree"]
    for run in figures["ceiling_counts_agree"]["detail"]["runs"]:
        counted = sum(run["sauron"].values())
        assert 0 < counted <= run["sent"], run
        assert counted + run["other_frames"] == run["program_runs"], run
    ceiling = figures["ceiling_cpu_per_packet_vs_tcpdump_ratio"]["detail"]
    assert ceiling["tcpdump_captured"] and min(ceiling["tcpdump_captured"]) > 0, ceiling
    # every figure is in the printed table
    for name in figures:
        assert name in done.stdout


def test_unknown_section_is_refused_by_name() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "per_packet,nosuch"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "no section nosuch" in done.stderr
