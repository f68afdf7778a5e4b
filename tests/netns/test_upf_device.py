"""The UPF's own TUN device as the N6 side, the way Open5GS's ogstun is: the
frames start at IP, and the device's hooks face the other way (what the
device receives, the UPF wrote towards the data network). The agent reads
the kind of each link at start and refuses links it cannot parse."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from sauron.abi import layout
from sauron.agent import interfaces
from sauron.agent.config import AgentConfig, ConfigError, InterfaceConfig
from sauron.agent.interfaces import ARPHRD_NONE, ARPHRD_RAWIP, attach_interfaces, resolve_links
from sauron.bpf.loader import ETHERNET, UPF_DEVICE, DataPlane
from sauron.bpf.maps import DataPlaneCounters, read_counters
from sauron.bpf.measurements import MeasureSettings, TransitExpiry, apply_settings
from sauron.catalog import Catalog
from sauron.host.netns import Topology
from sauron.kpi.quality import latency_kpis
from sauron.testbed.bed import N6_DN, UDP_ECHO_PORT, Testbed
from sauron.testbed.sessions import SessionsFile, make_sessions

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

UL, DL = layout.DIR_UPLINK, layout.DIR_DOWNLINK
# what the reference UPF adds to the IP bytes it counts (it tallies frames)
TRUTH_L2_BYTES = 14


def ip_link(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, "link", *args], check=True)


def config(ns: str, *links: dict[str, Any]) -> AgentConfig:
    return AgentConfig(interfaces=[{"netns": ns, **i} for i in links])


def test_links_are_read_at_start_and_unusable_ones_named(topology: Topology) -> None:
    ns = topology.namespace("links")
    for tun in ("ogstun", "ogstun2"):
        subprocess.run(["ip", "-n", ns, "tuntap", "add", "dev", tun, "mode", "tun"], check=True)
    subprocess.run(["ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap"], check=True)
    ip_link(ns, "add", "br0", "type", "bridge")
    ok = resolve_links(
        config(
            ns,
            {"name": "ogstun", "role": "n6"},
            {"name": "tap0", "role": "n3"},
            {"name": "br0", "role": "n6"},
            {"name": "lo", "role": "n9"},
        ),
        Path("agent.yaml"),
    )
    assert [i.link for i in ok.interfaces] == [UPF_DEVICE, ETHERNET, ETHERNET, ETHERNET]

    with pytest.raises(ConfigError) as caught:
        resolve_links(
            config(
                ns,
                {"name": "ogstun", "role": "n3"},
                {"name": "ogstun2", "role": "n6", "link": "ethernet"},
                {"name": "br0", "role": "n6", "link": "upf_device"},
                {"name": "gone0", "role": "n6"},
            ),
            Path("agent.yaml"),
        )
    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("field interfaces.0.link: ogstun is a tun link")
    assert "its role is n6, not n3" in problems[0]
    assert problems[1].startswith("field interfaces.1.link:")
    assert "without an Ethernet header" in problems[1]
    assert (
        problems[2].startswith("field interfaces.2.link:")
        and "a upf_device has none" in (problems[2])
    )
    assert problems[3] == f"field interfaces.3.name: no link 'gone0' in namespace {ns}"

    # the model itself refuses a UPF device on the GTP-U side
    with pytest.raises(ValueError, match="role must be n6"):
        config(ns, {"name": "ogstun", "role": "n3", "link": "upf_device"})


@pytest.mark.parametrize(
    ("facts", "settings", "expected"),
    [
        ((ARPHRD_NONE, "wireguard"), {}, "bare IP but not a UPF's TUN or GTP device"),
        ((ARPHRD_NONE, "wireguard"), {"link": "upf_device"}, UPF_DEVICE),
        ((ARPHRD_RAWIP, "gtp5g"), {}, UPF_DEVICE),
        ((ARPHRD_NONE, "gtp"), {}, UPF_DEVICE),
        ((768, "ipip"), {}, "neither Ethernet nor bare IP"),
    ],
)
def test_links_this_kernel_cannot_make(
    monkeypatch: pytest.MonkeyPatch, facts: tuple[int, str], settings: dict[str, str], expected: str
) -> None:
    """Tunnels and GTP devices need kernel modules this machine lacks: their
    hardware type and kind stand in for the link."""
    monkeypatch.setattr(interfaces, "link_facts", lambda ns, name: facts)
    itf = InterfaceConfig(name="x0", role="n6", **settings)
    if expected in (UPF_DEVICE, ETHERNET):
        assert interfaces.link_of(itf) == expected
    else:
        with pytest.raises(ValueError, match=expected):
            interfaces.link_of(itf)


def udp_round_trips(bed: Testbed, ues: list[str], rounds: int) -> None:
    """Each UE sends datagrams to the DN's echo service, which answers each:
    uplink through ogstun's receive side, downlink through its send side."""
    socks = [bed.ue_udp_socket(ue) for ue in ues]
    for n in range(rounds):
        for i, sock in enumerate(socks):
            sock.sendto(
                i.to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(40 + i),
                (
                    N6_DN,
                    UDP_ECHO_PORT,
                ),
            )
        time.sleep(0.01)
    time.sleep(0.5)
    for sock in socks:
        sock.close()


def side(now: DataPlaneCounters, before: DataPlaneCounters, point: int, sid: int, d: int) -> Any:
    a, b = now.slice(point, sid, d), before.slice(point, sid, d)
    return a.packets - b.packets, a.bytes - b.bytes, a.inner_bytes - b.inner_bytes


def test_n3_and_the_upf_tun_agree_and_transit_is_measured_through_it(
    dataplane: DataPlane, catalog: Catalog, tmp_path: Path
) -> None:
    sessions = SessionsFile(sessions=make_sessions(catalog, {"embb": 2, "urllc": 2, "mmtc": 3}))
    ids = {s.name: s.id for s in catalog.slices}
    ues = [str(s.ue_ip) for s in sessions.sessions]
    apply_settings(
        dataplane, MeasureSettings(transit_one_in=tuple((s.id, 1) for s in catalog.slices))
    )
    expiry = TransitExpiry(dataplane, timeout_s=0.5)
    with Testbed(catalog, sessions, tmp_path / "bed") as bed:
        # the UPF made ogstun when it started: attach now, N3 and the TUN only
        agent = resolve_links(
            config(bed.upf, {"name": "n3", "role": "n3"}, {"name": "ogstun", "role": "n6"}),
            Path("agent.yaml"),
        )
        assert agent.interfaces[1].link == UPF_DEVICE
        attach_interfaces(dataplane, agent.interfaces, bed.links)
        before = read_counters(dataplane, expiry)
        udp_round_trips(bed, ues, rounds=60)
        time.sleep(0.6)  # beyond the stamp timeout: every stamp's fate is known
        after = read_counters(dataplane, expiry)
        truth = bed.stop()

    upf = truth["upf"]["slices"]
    for name, sid in ids.items():
        n3_in = side(after, before, layout.POINT_N3_INGRESS, sid, UL)
        n6_out = side(after, before, layout.POINT_N6_EGRESS, sid, UL)
        n6_in = side(after, before, layout.POINT_N6_INGRESS, sid, DL)
        n3_out = side(after, before, layout.POINT_N3_EGRESS, sid, DL)
        forwarded = upf[name]["ul_forwarded"]
        read_back = upf[name]["dl_received"]
        assert forwarded > 0 and read_back == forwarded, (name, upf[name])
        # every packet the UPF wrote to ogstun, counted once on its receive side,
        # as IP (no link-layer header) and in the slice of its source address
        assert n6_out[0] == forwarded, (name, n6_out, upf[name])
        assert n6_out[1] == upf[name]["ul_forwarded_bytes"] - TRUTH_L2_BYTES * forwarded
        assert n6_out[1] == n6_out[2] == n3_in[2], (name, n3_in, n6_out)
        # every answer the DN sent, counted on ogstun's send side before the UPF read it
        assert n6_in[0] == read_back, (name, n6_in, upf[name])
        assert n6_in[1] == upf[name]["dl_received_bytes"] - TRUTH_L2_BYTES * read_back
        assert n6_in[1] == n3_out[2], (name, n6_in, n3_out)
        # nothing counted malformed, nothing counted the other way round
        assert after.slice(layout.POINT_N6_EGRESS, sid, UL).malformed == 0
        assert side(after, before, layout.POINT_N6_EGRESS, sid, DL)[0] == 0
        assert side(after, before, layout.POINT_N6_INGRESS, sid, UL)[0] == 0
        # transit through the UPF, N3 to ogstun and back: every packet stamped
        # and matched on the device's side of the UPF
        for d, packets in ((UL, forwarded), (DL, read_back)):
            kpis = latency_kpis(after, before, layout.LAT_TRANSIT, sid, d)
            assert kpis.samples == packets, (name, d, kpis.samples, packets)
            assert kpis.p50_ms is not None and 0 < kpis.p50_ms < 50
