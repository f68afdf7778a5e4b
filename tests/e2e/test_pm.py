"""The 3GPP view (/api/v1/pm), Open5GS's metric names on /metrics and the
data-volume energy split, over the real programs fed G-PDUs and end
markers: the TS 28.552 counts are the G-PDUs the programs counted and the
octets of the inner packets sent, equal to the engine's own interval;
the energy efficiency is the slice's bits over each method's joules."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import TestClient, TestServer
from frames import gtpu, gtpu_raw, outer
from manual_clock import ManualClock
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from served import serve_in_thread

from sauron.abi import layout
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.maps import DataPlaneCounters
from sauron.catalog import Catalog
from sauron.commands.client import SauronClient
from sauron.commands.views import pm_table
from sauron.energy.model import NodeEnergy, SliceEnergy
from sauron.service import schemas
from sauron.service.app import create_app

pytestmark = [pytest.mark.kernel]

EMBB_TEID, URLLC_TEID = 0x10001, 0x20001
END_MARKER = 254


class FixedCpuTimeMeter:
    """The energy meter's seam (measure) with CPU-time figures fixed by the
    test: the real meter reads this machine's CPU time, which no test can
    hold to an exact figure. The data-volume split is the engine's own."""

    NODE_JOULES, ATTRIBUTED = 10.0, 6.0
    SLICE_JOULES: ClassVar[dict[str, float]] = {
        "unclassified": 0.0,
        "embb": 5.0,
        "urllc": 1.0,
        "mmtc": 0.0,
    }

    def measure(
        self, before: DataPlaneCounters, now: DataPlaneCounters, traffic: dict[str, tuple[int, int]]
    ) -> tuple[NodeEnergy, dict[str, SliceEnergy]]:
        node = NodeEnergy(
            method="profile",
            joules=self.NODE_JOULES,
            attributed_joules=self.ATTRIBUTED,
            unattributed_joules=self.NODE_JOULES - self.ATTRIBUTED,
        )
        return node, {n: SliceEnergy(joules=j) for n, j in self.SLICE_JOULES.items()}


def _uplink(src: str, size: int) -> IP:
    return IP(src=src, dst="198.51.100.9") / UDP(sport=4000, dport=5000) / Raw(bytes(size))


def _downlink(dst: str, size: int) -> IP:
    return IP(src="198.51.100.9", dst=dst) / UDP(sport=5000, dport=4000) / Raw(bytes(size))


def _send(dataplane: DataPlane, point: int, frame: bytes) -> None:
    libbpf.test_run(dataplane.program_fd(point), frame)


def _measurements(doc: dict[str, Any], slice_name: str) -> dict[tuple[str, str | None], Any]:
    entry = next(s for s in doc["slices"] if s["slice"] == slice_name)
    return {(m["name"], m.get("energy_method")): m for m in entry["measurements"]}


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def _ask(agent: AgentRuntime, paths: list[str]) -> list[Any]:
    async def run() -> list[Any]:
        async with contextlib.AsyncExitStack() as running:
            client = await running.enter_async_context(TestClient(TestServer(create_app(agent))))
            answers = []
            for path in paths:
                r = await client.get(path)
                assert r.status == 200, await r.text()
                answers.append(await (r.text() if path == "/metrics" else r.json()))
            return answers

    return asyncio.run(run())


def test_pm_counts_are_the_programs_g_pdus_and_inner_octets(
    dataplane: DataPlane, catalog: Catalog
) -> None:
    clock = ManualClock(2_000_000.0)
    agent = AgentRuntime(
        catalog,
        ProgramMaps(dataplane, shortcut=False),
        clock=clock,
        energy=FixedCpuTimeMeter(),  # type: ignore[arg-type]
    )
    agent.prometheus.open5gs_names = True
    # a first interval the view must not mix in
    _send(dataplane, layout.POINT_N3_INGRESS, gtpu(_uplink("10.45.0.9", 10), EMBB_TEID, True))
    clock.t += 1
    agent.engine.tick()

    sizes_up = {"embb": [100, 300, 500], "urllc": [40]}
    sizes_down = {"embb": [1000, 1200], "urllc": [60, 80, 100]}
    ue = {"embb": "10.45.0.9", "urllc": "10.46.0.9"}
    teid = {"embb": EMBB_TEID, "urllc": URLLC_TEID}
    octets: dict[str, tuple[int, int]] = {}
    for name in ("embb", "urllc"):
        up = [_uplink(ue[name], n) for n in sizes_up[name]]
        down = [_downlink(ue[name], n) for n in sizes_down[name]]
        for packet in up:
            _send(dataplane, layout.POINT_N3_INGRESS, gtpu(packet, teid[name], True))
        for packet in down:
            _send(dataplane, layout.POINT_N3_EGRESS, gtpu(packet, teid[name], False))
        octets[name] = (sum(len(p) for p in up), sum(len(p) for p in down))
    # an end marker of eMBB's tunnel is GTP-U but no G-PDU: the agent counts
    # it among the packets that entered, TS 28.552 not among data packets
    _send(dataplane, layout.POINT_N3_INGRESS, outer(gtpu_raw(EMBB_TEID, msg_type=END_MARKER)))
    clock.t += 2
    latest = agent.engine.tick()

    pm, energy, metrics = _ask(agent, ["/api/v1/pm", "/api/v1/energy", "/metrics"])
    schemas.PmReport.model_validate(pm)
    schemas.EnergyReport.model_validate(energy)
    assert pm["granularity_period"] == {
        "begin": latest.time - 2.0,
        "end": latest.time,
        "seconds": 2.0,
        "intervals": 1,
    }
    assert [s["slice"] for s in pm["slices"]] == ["embb", "urllc", "mmtc"]
    embb_doc = pm["slices"][0]
    assert (embb_doc["snssai"], embb_doc["sst"], embb_doc["sd"]) == ("1-000001", 1, "000001")

    for name in ("embb", "urllc"):
        m = _measurements(pm, name)
        k = latest.slices[name]
        g_pdus_in, g_pdus_out = len(sizes_up[name]), len(sizes_down[name])
        assert m["GTP.InDataPktN3UPF.SNSSAI", None]["value"] == g_pdus_in
        assert m["GTP.OutDataPktN3UPF.SNSSAI", None]["value"] == g_pdus_out
        assert m["GTP.InDataOctN3UPF.SNSSAI", None]["value"] == octets[name][0]
        assert m["GTP.OutDataOctN3UPF.SNSSAI", None]["value"] == octets[name][1]
        assert m["GTP.InDataPktN3UPF.SNSSAI", None]["clause"] == "TS 28.552 §5.4.1.1"
        assert m["GTP.InDataOctN3UPF.SNSSAI", None]["unit"] == "octets"
        # the engine's own interval: what entered on N3 and left on it
        end_markers = 1 if name == "embb" else 0
        assert k.uplink.packets_in == g_pdus_in + end_markers
        assert k.downlink.packets_out == g_pdus_out
        # energy efficiency by each method: the slice's bits over its joules
        bits = 8 * sum(octets[name])
        cpu = FixedCpuTimeMeter.SLICE_JOULES[name]
        ee = "Energy efficiency of eMBB network slice"
        assert m[ee, "cpu_time"]["value"] == bits / cpu
        assert m[ee, "cpu_time"]["unit"] == "bit/J"
        share = sum(octets[name]) / sum(sum(v) for v in octets.values())
        by_volume = FixedCpuTimeMeter.ATTRIBUTED * share
        assert energy["slices"][name]["volume_joules"] == by_volume
        assert energy["slices"][name]["joules"] == cpu
        assert m[ee, "data_volume"]["value"] == bits / by_volume
    # the split holds the node's attributed energy, no more, no less
    assert sum(e["volume_joules"] for e in energy["slices"].values()) == pytest.approx(
        FixedCpuTimeMeter.ATTRIBUTED, rel=1e-15
    )
    # mMTC carried nothing: no volume, no efficiency (no energy of its own)
    mmtc = _measurements(pm, "mmtc")
    assert mmtc["GTP.InDataPktN3UPF.SNSSAI", None]["value"] == 0
    assert mmtc["Energy efficiency of eMBB network slice", "cpu_time"]["value"] is None

    # a window of both intervals adds the first interval's G-PDU
    window = _ask(agent, [f"/api/v1/pm?since={latest.time - 10}"])[0]
    assert window["granularity_period"]["intervals"] == 2
    first = _measurements(window, "embb")["GTP.InDataPktN3UPF.SNSSAI", None]["value"]
    assert first == len(sizes_up["embb"]) + 1

    # Open5GS's names on /metrics: the same counts since the programs loaded
    samples = _samples(metrics)
    for name in ("embb", "urllc"):
        s = catalog.get(name)
        assert s is not None
        sd = f"{s.spec.snssai.sd:06x}"
        labels = f'{{slice="{name}",snssai="{s.spec.snssai}",sst="{s.spec.snssai.sst}",sd="{sd}"}}'
        before = 1 if name == "embb" else 0
        assert samples[f"fivegs_ep_n3_gtp_indatapktn3upf{labels}"] == len(sizes_up[name]) + before
        assert samples[f"fivegs_ep_n3_gtp_outdatapktn3upf{labels}"] == len(sizes_down[name])
        first_octets = len(_uplink("10.45.0.9", 10)) * before
        assert (
            samples[f"fivegs_ep_n3_gtp_indatavolumeqosleveln3upf{labels}"]
            == octets[name][0] + first_octets
        )
        assert samples[f"fivegs_ep_n3_gtp_outdatavolumeqosleveln3upf{labels}"] == octets[name][1]
        by_volume_total = samples[
            f'sauron_energy_by_volume_joules_total{labels[:-1]},method="profile"}}'
        ]
        assert by_volume_total == pytest.approx(
            energy["slices"][name]["cumulative_volume_joules"], abs=1e-6
        )

    # the client reads the same document into the schema's model, the CLI's view shows it
    async def through_client(url: str) -> schemas.PmReport:
        async with SauronClient(url) as api:
            return await api.pm()

    with serve_in_thread(create_app(agent)) as url:
        report = asyncio.run(through_client(url))
    assert report.model_dump() == schemas.PmReport.model_validate(pm).model_dump()
    text = pm_table(report)
    assert "embb (S-NSSAI 1-000001)" in text
    in_octets = f"GTP.InDataOctN3UPF.SNSSAI{octets['embb'][0]:>{56 - 25 + 14}} octets"
    assert in_octets in text
