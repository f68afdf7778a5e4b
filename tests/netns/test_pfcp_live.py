"""The N4 watch on real namespaces: an SMF establishes, modifies and deletes
a session with a UPF over real UDP; the agent's watch reads the exchange off
the UPF's N4 interface, and the classification maps follow within a second.
G-PDUs sent through the UPF's N3 interface meanwhile land in the session's
slice, and after the deletion in no slice."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from agent_process import REPO, start_agent, unix_get_json
from learned_maps import teid_slice, ue_slice
from pfcp_sockets import udp_socket
from scapy.layers.inet import IP, UDP

from sauron.abi import layout
from sauron.agent.config import InterfaceConfig
from sauron.agent.interfaces import attach_interfaces
from sauron.bpf.links import Links
from sauron.bpf.loader import SOCKET, BpfObject, DataPlane
from sauron.bpf.maps import read_counters
from sauron.catalog import Catalog
from sauron.control.n4_watch import N4Watch
from sauron.control.pfcp_learner import PfcpLearner
from sauron.control.registry import SessionRegistry
from sauron.control.rules import LearnedRules
from sauron.host.netns import Topology
from sauron.testbed import codec
from sauron.testbed.pfcp_peers import PfcpSmf, PfcpUpf

pytestmark = [pytest.mark.kernel]

SMF_N4, UPF_N4 = "10.200.0.1", "10.200.0.2"
GNB_N3, UPF_N3 = "10.100.0.1", "10.100.0.2"
UE = "10.99.0.5"  # in no catalog subnet: only the learned session classifies it
URLLC_SNSSAI = (2, 0x000001)
G_PDUS = 40


async def within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long the condition took to hold; fails after `seconds`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def send_g_pdus(sock: socket.socket, teid: int, count: int) -> None:
    inner = bytes(IP(src=UE, dst="192.0.2.80") / UDP(sport=4000, dport=5000) / b"probe")
    frame = codec.encapsulate(teid, inner, qfi=1, uplink=True)
    for _ in range(count):
        sock.sendto(frame, (UPF_N3, codec.GTPU_PORT))


def uplink_packets(dp: DataPlane, slice_id: int) -> int:
    return int(read_counters(dp).slice(layout.POINT_N3_INGRESS, slice_id, 0).packets)


def test_maps_follow_an_smf_over_real_udp(dataplane: DataPlane, catalog: Catalog) -> None:
    urllc = catalog.get("urllc")
    assert urllc is not None
    pfcp_filter = BpfObject(["pfcp_filter.c"])
    with Topology() as topo, Links() as links:
        smf_ns, upf_ns, gnb_ns = (topo.namespace(r) for r in ("smf", "upf", "gnb"))
        topo.veth(smf_ns, "n4", f"{SMF_N4}/24", upf_ns, "n4", f"{UPF_N4}/24")
        topo.veth(gnb_ns, "n3", f"{GNB_N3}/24", upf_ns, "n3", f"{UPF_N3}/24")
        attach_interfaces(dataplane, [InterfaceConfig(name="n3", role="n3", netns=upf_ns)], links)
        upf_sock = udp_socket(upf_ns, UPF_N4)
        smf_sock = udp_socket(smf_ns, SMF_N4)
        gnb_sock = udp_socket(gnb_ns)
        upf = PfcpUpf(upf_sock, UPF_N4)
        smf = PfcpSmf(smf_sock, SMF_N4, UPF_N4)
        registry = SessionRegistry(catalog, LearnedRules(dataplane, catalog))
        learner = PfcpLearner(registry.upsert, registry.remove)
        watch = N4Watch(
            "n4",
            upf_ns,
            learner,
            pfcp_filter.function("sauron_pfcp_filter", SOCKET).fd,
            after_batch=registry.flush,
        )
        # traffic and the watch's own queries stay apart: N4 carries only PFCP
        noise = udp_socket(upf_ns)
        noise.sendto(b"not pfcp", (SMF_N4, 9999))

        async def scenario() -> dict[str, float]:
            watch.start(asyncio.get_running_loop())
            taken: dict[str, float] = {}
            send_g_pdus(gnb_sock, 0x500, G_PDUS)  # before any session: unclassified
            session = await asyncio.to_thread(smf.establish, 0xA1, UE, URLLC_SNSSAI, "urllc")
            assert session.teid == 0x500  # chosen by the UPF, learned from its response
            taken["establish"] = await within(
                1.0,
                lambda: (
                    teid_slice(dataplane, session.teid) == urllc.id
                    and ue_slice(dataplane, UE) == urllc.id
                ),
            )
            await asyncio.to_thread(smf.modify_downlink, session.up_seid, 0x77, GNB_N3)
            taken["modify"] = await within(
                1.0,
                lambda: any(
                    t.teid == 0x77 and not t.local
                    for s in registry.sessions.values()
                    for t in s.tunnels
                ),
            )
            send_g_pdus(gnb_sock, session.teid, G_PDUS)
            await within(1.0, lambda: uplink_packets(dataplane, urllc.id) == G_PDUS)
            await asyncio.to_thread(smf.delete, session.up_seid)
            taken["delete"] = await within(
                1.0,
                lambda: (
                    teid_slice(dataplane, session.teid) is None and ue_slice(dataplane, UE) is None
                ),
            )
            send_g_pdus(gnb_sock, session.teid, G_PDUS)
            await within(1.0, lambda: uplink_packets(dataplane, 0) == 2 * G_PDUS)
            return taken

        try:
            taken = asyncio.run(scenario())
            stats = watch.stats()
        finally:
            watch.close()
            upf.close()
            for s in (smf_sock, gnb_sock, noise):
                s.close()
            pfcp_filter.close()
    print(f"maps followed the SMF in {taken}")
    assert uplink_packets(dataplane, urllc.id) == G_PDUS
    # six messages, each seen once on the UPF's N4, and nothing else
    assert stats["datagrams"] == 6 and stats["kernel_drops"] == 0
    assert sum(learner.applied.values()) == 6 and not learner.rejects
    assert registry.sessions == {}
    ((ended, _),) = registry.ended
    doc = ended.doc("urllc")
    assert (doc["ue_ip"], doc["snssai"], doc["dnn"], doc["teids"]) == (
        UE,
        {"sst": 2, "sd": "000001"},
        "urllc",
        ["0x00000077", "0x00000500"],
    )
    assert ended.slice_rule == "snssai"


def test_the_agent_learns_from_the_n4_interface_in_its_configuration(tmp_path: Path) -> None:
    with Topology() as topo:
        smf_ns, upf_ns = topo.namespace("smf"), topo.namespace("upf")
        topo.veth(smf_ns, "n4", f"{SMF_N4}/24", upf_ns, "n4", f"{UPF_N4}/24")
        topo.veth(smf_ns, "n3", f"{GNB_N3}/24", upf_ns, "n3", f"{UPF_N3}/24")
        config = tmp_path / "agent.yaml"
        api_socket = tmp_path / "api.sock"
        base = {
            "interfaces": [{"name": "n3", "role": "n3", "netns": upf_ns}],
            # no token: the sessions are asked over the agent's UNIX socket
            "service": {"host": "127.0.0.1", "port": 0, "socket": str(api_socket)},
            "energy": {"enabled": False},
        }
        # a watch that cannot open says which one, before anything serves
        config.write_text(
            yaml.safe_dump({**base, "control_plane": {"pfcp": [{"name": "n4x", "netns": upf_ns}]}})
        )
        refused = subprocess.run(
            [sys.executable, "-m", "sauron", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert refused.returncode != 0
        assert "control_plane.pfcp.0.name: cannot watch 'n4x'" in refused.stderr + refused.stdout
        config.write_text(
            yaml.safe_dump({**base, "control_plane": {"pfcp": [{"name": "n4", "netns": upf_ns}]}})
        )
        agent, url = start_agent(config)
        upf_sock = udp_socket(upf_ns, UPF_N4)
        smf_sock = udp_socket(smf_ns, SMF_N4)
        upf = PfcpUpf(upf_sock, UPF_N4)
        smf = PfcpSmf(smf_sock, SMF_N4, UPF_N4)
        try:
            session = smf.establish(0xB2, UE, (3, 0x000001), "iot")
            deadline = time.monotonic() + 1.0
            while True:
                listed = unix_get_json(api_socket, "/api/v1/sessions")
                if listed["total"] == 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            (doc,) = listed["sessions"]
            # over TCP, without a token, the same route is closed
            with pytest.raises(urllib.error.HTTPError) as closed:
                urllib.request.urlopen(f"{url}/api/v1/sessions", timeout=5)
            assert closed.value.code == 403
            assert (doc["ue_ip"], doc["slice"], doc["slice_rule"]) == (UE, "mmtc", "snssai")
            assert doc["teids"] == [f"0x{session.teid:08x}"]
            smf.delete(session.up_seid)
            deadline = time.monotonic() + 1.0
            while (
                unix_get_json(api_socket, "/api/v1/sessions")["total"]
                and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            ended = unix_get_json(api_socket, "/api/v1/sessions?state=ended")
            assert [d["ue_ip"] for d in ended["sessions"]] == [UE]
            watch = ended["sources"]["pfcp"]["watches"][0]
            assert (watch["interface"], watch["netns"], watch["datagrams"]) == ("n4", upf_ns, 4)
        finally:
            agent.send_signal(signal.SIGTERM)
            out, _ = agent.communicate(timeout=20)
            upf.close()
            smf_sock.close()
        assert agent.returncode == 0, out
