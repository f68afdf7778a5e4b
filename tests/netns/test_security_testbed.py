"""The security checks on the live testbed: `sauron run` watches the
testbed's UPF (n3 and n6) with the checks on (the gNB's N3 address as the
one peer, the N3 network and the UPF's N6 gateway protected), UDP of all
three slices flows through the real UPF, and G-PDUs that fail each check
are sent from the gNB's namespace beside it, over its N3 link, from kernel
UDP sockets (another outer source is a second address on the gNB's n3).
The test's own account of what it sent is the truth:

- each interval's counts, summed, equal what was sent per slice and kind,
  and the normal traffic counts nothing (nor does anything else in the
  data path's own counts, the unclassified slice's among them);
- a TEID scan (20 unknown TEIDs within a second from one source) and a
  spoofing UE (5 sources on one TEID) are detected, with their kind,
  slice, peer, TEIDs, frames and distinct TEIDs or sources;
- a session learned from PFCP (an SMF and UPF of the testbed's own on an
  N4 link into the UPF's namespace, which the agent watches): a source in
  the session's slice subnet but not its own is counted only then, with
  only the catalog it counts nothing;
- an agent stopped with `datapath.keep_on_stop` while failing frames keep
  coming, and started again: the intervals of both runs hold every frame,
  and a spoofing UE detected before the stop is the same event after it,
  with every frame;
- with no peer configured, the gNB is a peer once a session learned over
  N4 has its downlink there, and a stranger's frames count from then on.

Where the agent shows them: each interval's counts are the `security`
of its KPI points (`/api/v1/slices/{name}/kpis`), and the detections those
of `/api/v1/security`. The catalog sets each kind's limit
(`max_security_events_per_s`) to 0 for every slice (an operator who
tolerates none): each exceeded limit opens a violation of its slice and
kind, and of no other."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import yaml
from agent_process import REPO, agent_config, start_agent, stop_agent, unix_get_json
from pfcp_sockets import udp_socket
from scapy.layers.inet import IP, UDP
from scapy.packet import Packet, Raw

from sauron.abi.kpis import SECURITY_KPIS, SECURITY_SLA_KEY
from sauron.agent.checkpoint import FORMAT as CHECKPOINT_FORMAT
from sauron.agent.checkpoint import Reading
from sauron.agent.state_file import StateFile
from sauron.bpf.pinned import PinnedDataPlane, builds_in, pin_folder
from sauron.bpf.security import read_counts
from sauron.catalog import load_catalog
from sauron.host.netns import inside
from sauron.security.detect import LISTED, SPOOFING_UE, TEID_SCAN, SecurityEvent
from sauron.testbed import codec
from sauron.testbed.bed import CORE_NETWORKS, N3_GNB, N3_PREFIX, N3_UPF, N6_DN, N6_UPF, Testbed
from sauron.testbed.paced import send_paced
from sauron.testbed.pfcp_peers import PfcpSmf, PfcpUpf
from sauron.testbed.sessions import SessionsFile, make_sessions

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

INTERVAL_S = 0.5
KINDS = [k.name for k in SECURITY_KPIS]
SPOOFED, UNKNOWN_TEID, GTP_IN_GTP, TO_CORE, UNKNOWN_PEER = KINDS
SLICES = ("embb", "urllc", "mmtc")
#: each slice's normal traffic, datagrams per second to the DN's echo
NORMAL_PPS = 100.0
#: another outer source on the gNB's N3 link: no configured peer
STRANGER = "192.0.2.77"
#: the scanner's outer source, a stranger too
SCANNER = "192.0.2.66"
#: the testbed's sessions (make_sessions): UE address and uplink TEID per slice
UE = {"embb": "10.45.0.2", "urllc": "10.46.0.2", "mmtc": "10.47.0.2"}
TEID = {"embb": 0x10000, "urllc": 0x20000, "mmtc": 0x30000}
#: TEIDs of no session and no catalog range (a TEID's first frame decides its
#: slice for the ones after it: each case has its own)
UNKNOWN, UNKNOWN_TOO = 0x00500001, 0x00500002
SCANNED = range(0x00600000, 0x00600000 + 20)
#: the PFCP-learned session: eMBB, a TEID of eMBB's catalog range the
#: testbed's own sessions do not use, one UE address
SMF_N4, UPF_N4 = "10.200.0.1", "10.200.0.2"
LEARNED_TEID, LEARNED_UE, NEIGHBOUR = 0x10100, "10.45.1.1", "10.45.1.2"
EMBB_SNSSAI = (1, 0x000001)
#: the spoofing UE's sources on mMTC's TEID (none of mMTC's subnets)
SPOOF_SOURCES = [f"203.0.113.{i}" for i in range(10, 15)]
#: the sources of the UE spoofing on URLLC's TEID across a restart
RESTART_SOURCES = [f"203.0.113.{i}" for i in range(20, 25)]
#: a GTPv2-C header (echo request) and a GTPv1-U G-PDU, as inner payloads
GTPC = bytes([0x48, 1, 0, 8]) + bytes(8)
GTPU = codec.encapsulate(0x42, bytes(IP(src="10.9.9.9", dst="10.100.0.5") / UDP()))


def udp(src: str, dst: str = N6_DN, dport: int = 9, payload: bytes = bytes(32)) -> Packet:
    return IP(src=src, dst=dst) / UDP(sport=40000, dport=dport) / Raw(payload)


@dataclass(frozen=True)
class Case:
    """Frames of one kind: who sends them, on which TEID, what is inside,
    how many, and the slice and checks they count in (none: normal)."""

    name: str
    teid: int
    inner: Packet
    frames: int
    slice: str
    kinds: tuple[str, ...] = ()
    outer: str = N3_GNB


#: the catalog-only round: every kind in at least one slice, and what
#: counts only with a learned session counting nothing
CATALOG_CASES = [
    Case("eMBB's TEID from URLLC's UE address", TEID["embb"], udp("10.46.0.9"), 7, "embb",
         (SPOOFED,)),
    Case("a public source on a TEID of mMTC's range", 0x30005, udp("203.0.113.5"), 3, "mmtc",
         (SPOOFED,)),
    Case("an unknown TEID from an mMTC address", UNKNOWN, udp("10.47.3.3"), 5, "mmtc",
         (UNKNOWN_TEID,)),
    Case("GTP-U inside URLLC's tunnel", TEID["urllc"], udp(UE["urllc"], dport=2152,
         payload=GTPU), 6, "urllc", (GTP_IN_GTP,)),
    Case("GTP-C inside eMBB's tunnel", TEID["embb"], udp(UE["embb"], dport=2123, payload=GTPC),
         2, "embb", (GTP_IN_GTP,)),
    Case("mMTC to the UPF's N3 address", TEID["mmtc"], udp(UE["mmtc"], N3_UPF), 9, "mmtc",
         (TO_CORE,)),
    Case("eMBB to the UPF's N6 gateway", TEID["embb"], udp(UE["embb"], N6_UPF), 4, "embb",
         (TO_CORE,)),
    Case("URLLC from a stranger", TEID["urllc"], udp(UE["urllc"]), 4, "urllc", (UNKNOWN_PEER,),
         outer=STRANGER),
    Case("everything at once", UNKNOWN_TOO, udp("10.46.7.7", N3_UPF, 2152, GTPU), 2, "urllc",
         (UNKNOWN_TEID, GTP_IN_GTP, TO_CORE, UNKNOWN_PEER), outer=STRANGER),
    # in eMBB's subnet on a TEID of eMBB's range: only a session tells it apart
    Case("an eMBB address on the learned TEID, not learned", LEARNED_TEID, udp(NEIGHBOUR), 6,
         "embb"),
]  # fmt: skip

#: the round with the session learned
LEARNED_CASES = [
    Case("the session's own address", LEARNED_TEID, udp(LEARNED_UE), 10, "embb"),
    Case("another eMBB address on the session's TEID", LEARNED_TEID, udp(NEIGHBOUR), 6, "embb",
         (SPOOFED,)),
    Case("the session to the UPF's N3 address", LEARNED_TEID, udp(LEARNED_UE, N3_UPF), 3,
         "embb", (TO_CORE,)),
    Case("another TEID's UE, in the session's slice", TEID["embb"], udp(NEIGHBOUR), 4, "embb"),
]  # fmt: skip


class Gnb:
    """UDP sockets in the gNB's namespace, one per outer source, that send
    G-PDUs to the UPF's N3 address; what they sent, per slice and kind."""

    def __init__(self, bed: Testbed) -> None:
        self.socks: dict[str, socket.socket] = {}
        for source in (N3_GNB, STRANGER, SCANNER):
            with inside(bed.gnb):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((source, 0))
            self.socks[source] = sock
        self.lock = threading.Lock()

    def send(self, outer: str, teid: int, inner: Packet, frames: int = 1) -> None:
        frame = codec.encapsulate(teid, bytes(inner), qfi=9, uplink=True)
        with self.lock:
            for _ in range(frames):
                self.socks[outer].sendto(frame, (N3_UPF, codec.GTPU_PORT))

    def play(self, cases: list[Case], truth: Counter[tuple[str, str]]) -> None:
        """Each case's frames, a few at a time in turn (paced: the veth's
        backlog drops none), added to `truth`."""
        left = {c.name: c.frames for c in cases}
        while any(left.values()):
            for c in cases:
                if left[c.name]:
                    self.send(c.outer, c.teid, c.inner)
                    left[c.name] -= 1
                    truth.update((c.slice, kind) for kind in c.kinds)
            time.sleep(0.002)

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()


@dataclass
class Agent:
    config: Path
    proc: subprocess.Popen[str]
    url: str
    state: Path  # the agent's state folder for this configuration's data path


@dataclass
class Bed:
    bed: Testbed
    gnb: Gnb
    agent: Agent
    api_socket: Path
    smf: str  # the SMF's namespace, N4 into the UPF's
    normal: threading.Event
    sent: dict[str, int] = field(default_factory=dict)
    #: every failing frame the tests sent, per (slice, kind), since the data path was built
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)


def security_catalog(path: Path) -> Path:
    """The default catalog, each slice promising no frame failing any check
    (and nothing else, so that no other target opens a violation)."""
    doc = yaml.safe_load((REPO / "slices" / "default.yaml").read_text())
    for s in doc["slices"]:
        s["sla"] = {SECURITY_SLA_KEY: dict.fromkeys(KINDS, 0)}
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    tmp = tmp_path_factory.mktemp("security")
    catalog_path = security_catalog(tmp / "catalog.yaml")
    catalog = load_catalog(catalog_path)
    sessions = SessionsFile(sessions=make_sessions(catalog, dict.fromkeys(SLICES, 1)))
    assert {s.slice: (str(s.ue_ip), s.ul_teid) for s in sessions.sessions} == {
        name: (UE[name], TEID[name]) for name in SLICES
    }
    with Testbed(catalog, sessions, tmp / "bed", echo_interval=0) as testbed:
        for extra in (STRANGER, SCANNER):
            subprocess.run(
                ["ip", "-n", testbed.gnb, "addr", "add", f"{extra}/{N3_PREFIX}", "dev", "n3"],
                check=True,
            )
        # N4 into the UPF's namespace, from an SMF's of the testbed's own
        smf_ns = testbed.topology.namespace("smf")
        testbed.topology.veth(smf_ns, "n4", f"{SMF_N4}/24", testbed.upf, "n4", f"{UPF_N4}/24")
        api_socket = tmp / "api.sock"
        config = agent_config(
            tmp / "agent.yaml",
            testbed.upf,
            catalog=str(catalog_path),
            interval_s=INTERVAL_S,
            service={"host": "127.0.0.1", "port": 0, "socket": str(api_socket)},
            sla={"window": 1, "open_bad": 1, "close_good": 1},
            control_plane={"pfcp": [{"name": "n4", "netns": testbed.upf}]},
            datapath={"state_dir": str(tmp / "agent-state"), "keep_on_stop": True},
            security={
                "peers": [N3_GNB],
                "protected": list(CORE_NETWORKS),
                "quiet_s": 2.0,
            },
        )
        state = tmp / "agent-state" / pin_folder("node-test", config).name
        proc, url = start_agent(config)
        agent = Agent(config, proc, url, state)
        normal = threading.Event()
        sent: dict[str, int] = {}
        plan = dict.fromkeys(UE.values(), NORMAL_PPS)
        sender = threading.Thread(target=send_paced, args=(testbed, plan, normal, sent))
        sender.start()
        gnb = Gnb(testbed)
        try:
            yield Bed(testbed, gnb, agent, api_socket, smf_ns, normal, sent)
        finally:
            normal.set()
            sender.join()
            gnb.close()
            out = stop_agent(agent.proc)
            detached = subprocess.run(
                [sys.executable, "-m", "sauron", "detach", "--config", str(config)],
                capture_output=True,
                text=True,
                cwd=REPO,
            )
        assert agent.proc.returncode == 0, out[-3000:]
        assert detached.returncode == 0, detached.stdout + detached.stderr


# ---- what the agent shows ----------------------------------------------------


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return dict(json.loads(answer.read()))


def readyz(url: str) -> dict:
    """/readyz's body, ready or not yet (its first interval still to come)."""
    try:
        return get_json(f"{url}/readyz")
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))


def points(url: str, name: str, after: float) -> list[dict]:
    """The slice's intervals that ended after `after`."""
    doc = get_json(f"{url}/api/v1/slices/{name}/kpis?since={after}")
    return [p for p in doc["points"] if p["time"] > after]


def interval_counts(point: dict) -> dict[str, int]:
    """One interval's frames per kind, as its KPI point carries them."""
    counts = point["security"]
    assert counts is not None, "the checks are on"
    return {kind: int(n) for kind, n in counts.items()}


def counted(url: str, after: float) -> Counter[tuple[str, str]]:
    """Frames per (slice, kind) over the intervals after `after`; every
    interval checks every kind (the checks are on)."""
    total: Counter[tuple[str, str]] = Counter()
    for name in SLICES:
        for point in points(url, name, after):
            counts = interval_counts(point)
            assert sorted(counts) == sorted(KINDS), point["checks"]
            total.update({(name, kind): n for kind, n in counts.items() if n})
    return total


def latest(url: str) -> float:
    found = points(url, "embb", 0.0)
    return float(found[-1]["time"]) if found else 0.0


def next_interval(url: str) -> float:
    """Waits for the agent's next interval to end; returns its end."""
    current = latest(url)
    time.sleep(max(0.0, current + INTERVAL_S - time.time() - 0.05))
    while (now := latest(url)) == current:
        time.sleep(0.01)
    return now


def settled(url: str, after: float, want: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """The counts once they reached `want` (or after 10 s), and an interval
    later: nothing is counted twice."""
    deadline = time.monotonic() + 10.0
    while counted(url, after) != want and time.monotonic() < deadline:
        time.sleep(INTERVAL_S / 2)
    next_interval(url)
    return counted(url, after)


def violations(url: str, after: float) -> set[tuple[str, str]]:
    """(slice, kind) of the security violations opened after `after`."""
    prefix = SECURITY_SLA_KEY + "."
    return {
        (v["slice"], v["target"].removeprefix(prefix))
        for v in get_json(f"{url}/api/v1/sla")["events"]
        if v["target"].startswith(prefix) and v["started_at"] > after
    }


def in_the_data_path(agent: Agent) -> Counter[tuple[str, str]]:
    """The pinned data path's own counts since it was built, per (slice,
    kind), the unclassified slice's among them."""
    folder = pin_folder("node-test", agent.config)
    (build,) = builds_in(folder)
    with PinnedDataPlane(folder / f"build-{build}") as dp:
        counts = read_counts(dp)
    catalog = load_catalog()
    return Counter(
        {
            (catalog.name_of(int(s)), KINDS[int(k)]): int(counts[s, k])
            for s, k in zip(*counts.nonzero(), strict=True)
        }
    )


@contextmanager
def n4(bed: Bed) -> Iterator[PfcpSmf]:
    """An SMF and a UPF speaking PFCP over the N4 link the agent watches."""
    upf = PfcpUpf(udp_socket(bed.bed.upf, UPF_N4), UPF_N4, first_teid=LEARNED_TEID)
    smf_sock = udp_socket(bed.smf, SMF_N4)
    try:
        yield PfcpSmf(smf_sock, SMF_N4, UPF_N4)
    finally:
        upf.close()
        smf_sock.close()


def sessions_listed(bed: Bed, total: int) -> None:
    """Waits for the agent to list `total` sessions (its UNIX socket)."""
    deadline = time.monotonic() + 2.0
    while unix_get_json(bed.api_socket, "/api/v1/sessions")["total"] != total:
        assert time.monotonic() < deadline, f"the agent does not list {total} sessions"
        time.sleep(0.02)


def restart(bed: Bed, forget_peers: bool = False) -> str:
    """Stops the agent (its data path kept counting) and starts it again on
    the same data path; the new agent's URL. `forget_peers`: the new agent
    starts without the state the last one kept (its detections and the
    peers it learned), as a first agent would."""
    out = stop_agent(bed.agent.proc)
    assert bed.agent.proc.returncode == 0, out[-3000:]
    if forget_peers:
        (bed.agent.state / "security").unlink(missing_ok=True)
    proc, url = start_agent(bed.agent.config)
    bed.agent.proc, bed.agent.url = proc, url
    assert readyz(url)["data_path"]["how"] == "adopted"
    return url


def detections(agent: Agent) -> list[SecurityEvent]:
    """Every detection the agent keeps, as /api/v1/security lists them."""
    catalog = load_catalog()
    ids = {catalog.name_of(i): i for i in range(catalog.slice_rows)}
    return [
        SecurityEvent(
            kind=e["kind"],
            slice_id=ids[e["slice"]],
            peer=e["peer"],
            teids=tuple(int(t, 16) for t in e["teids"]),
            first_seen=e["first_seen"],
            last_seen=e["last_seen"],
            count=e["count"],
            distinct=e["distinct"],
            id=e["id"],
            ongoing=e["ongoing"],
        )
        for e in get_json(f"{agent.url}/api/v1/security")["events"]
    ]


def detected(agent: Agent, kind: str, frames: int, after: float) -> SecurityEvent:
    """The event of `kind` first seen after `after`, once it holds `frames`
    frames (or the last seen after 10 s)."""
    deadline = time.monotonic() + 10.0
    while True:
        found = [e for e in detections(agent) if e.kind == kind and e.first_seen > after]
        if (found and found[-1].count >= frames) or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.1)


def slice_id(name: str) -> int:
    found = load_catalog().get(name)
    assert found is not None
    return found.id


# ---- the tests ---------------------------------------------------------------------


def test_normal_traffic_of_every_slice_counts_nothing(bed: Bed) -> None:
    """Four intervals of the three slices' UDP through the UPF: each slice's
    uplink flowed in each, and no check failed (each interval lists every
    kind at 0) and nothing was detected."""
    start = next_interval(bed.agent.url)
    for _ in range(4):
        next_interval(bed.agent.url)
    for name in SLICES:
        watched = points(bed.agent.url, name, start)
        assert len(watched) >= 4
        for point in watched:
            assert point["uplink"]["packets_in"] > 0, (name, point["uplink"])
            assert interval_counts(point) == dict.fromkeys(KINDS, 0), (name, point["security"])
    assert detections(bed.agent) == []
    assert violations(bed.agent.url, 0.0) == set()
    assert in_the_data_path(bed.agent) == bed.injected


def test_each_kind_counts_per_slice_and_scans_and_spoofing_ues_are_detected(bed: Bed) -> None:
    """Every kind mixed into the normal traffic with only the catalog's
    TEID ranges and UE subnets: the intervals' counts per slice and kind
    are what was sent; each opens its slice's violation of that kind and
    no other. Then a scan of 20 unknown TEIDs from one stranger within a
    second, and a UE sending from 5 addresses not its own, twice each:
    each one event, with its slice, peer, TEIDs, frames and distinct
    TEIDs or sources (the scan's frames counted as unknown TEIDs and an
    unknown peer, the spoofing UE's as spoofed)."""
    url = bed.agent.url
    truth: Counter[tuple[str, str]] = Counter()
    start = next_interval(url)
    bed.gnb.play(CATALOG_CASES, truth)
    assert settled(url, start, truth) == truth
    assert violations(url, start) == set(truth)

    scan_start = time.time()
    for teid in SCANNED:
        bed.gnb.send(SCANNER, teid, udp("10.45.8.8"))
    truth.update({("embb", UNKNOWN_TEID): len(SCANNED), ("embb", UNKNOWN_PEER): len(SCANNED)})
    for _ in range(2):
        for source in SPOOF_SOURCES:
            bed.gnb.send(N3_GNB, TEID["mmtc"], udp(source))
        time.sleep(0.2)
    truth[("mmtc", SPOOFED)] += 2 * len(SPOOF_SOURCES)
    assert settled(url, start, truth) == truth
    bed.injected.update(truth)
    # the data path's own counts: these frames and nothing else, in any slice
    assert in_the_data_path(bed.agent) == bed.injected

    scan = detected(bed.agent, TEID_SCAN, len(SCANNED), start)
    assert (scan.slice_id, scan.peer, scan.count, scan.distinct) == (
        slice_id("embb"),
        SCANNER,
        len(SCANNED),
        len(SCANNED),
    )
    assert scan.teids == tuple(SCANNED[:LISTED])
    spoof = detected(bed.agent, SPOOFING_UE, 2 * len(SPOOF_SOURCES), start)
    assert (spoof.slice_id, spoof.peer, spoof.teids, spoof.count, spoof.distinct) == (
        slice_id("mmtc"),
        N3_GNB,
        (TEID["mmtc"],),
        2 * len(SPOOF_SOURCES),
        len(SPOOF_SOURCES),
    )
    # kernel times made wall-clock ones (within a clock reading's error)
    assert scan_start - 0.05 <= scan.first_seen <= scan.last_seen <= time.time()
    # nothing else was detected: the other kinds' sources and TEIDs stayed under the thresholds
    assert {e.kind for e in detections(bed.agent)} == {TEID_SCAN, SPOOFING_UE}


def test_a_learned_session_tells_its_own_address_from_its_slices_others(bed: Bed) -> None:
    """An SMF establishes an eMBB session over N4 (its TEID in eMBB's
    catalog range, one UE address) and points its downlink at the gNB;
    the agent learns it from the UPF's N4 link. A source in eMBB's subnet
    that is not the session's is then counted as spoofed on the session's
    TEID (with only the catalog, the same frames counted nothing: the
    round above), its own address is not, and the catalog still rules the
    TEIDs of no session."""
    url = bed.agent.url
    with n4(bed) as smf:
        session = smf.establish(0xC1, LEARNED_UE, EMBB_SNSSAI, "internet")
        assert session.teid == LEARNED_TEID
        smf.modify_downlink(session.up_seid, 0x90001, N3_GNB)
        sessions_listed(bed, 1)
        truth: Counter[tuple[str, str]] = Counter()
        start = next_interval(url)
        bed.gnb.play(LEARNED_CASES, truth)
        assert truth == {("embb", SPOOFED): 6, ("embb", TO_CORE): 3}
        assert settled(url, start, truth) == truth
        bed.injected.update(truth)
        # the data path's own counts: these frames and nothing else, in any slice
        assert in_the_data_path(bed.agent) == bed.injected
        assert not [e for e in detections(bed.agent) if e.first_seen > start]
        smf.delete(session.up_seid)
        sessions_listed(bed, 0)


def test_a_restart_under_failing_frames_counts_every_one(bed: Bed) -> None:
    """Frames failing checks keep coming (eMBB spoofed, mMTC to the core,
    and a UE on URLLC's TEID sending from five sources not its own) while
    the agent stops with datapath.keep_on_stop and starts again: the first
    agent's intervals and the second's hold every frame sent, the ones sent
    while none ran in the second's first interval; the spoofing UE the
    first agent detected is the one the second goes on growing, with every
    frame of it."""
    url = bed.agent.url
    spoofing = [
        Case(f"URLLC's TEID from {source}", TEID["urllc"], udp(source), 1, "urllc", (SPOOFED,))
        for source in RESTART_SOURCES
    ]
    cases = [CATALOG_CASES[0], CATALOG_CASES[5], *spoofing]
    truth: Counter[tuple[str, str]] = Counter()
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.is_set():
            bed.gnb.play(cases, truth)
            time.sleep(0.01)

    start = next_interval(url)
    sending = threading.Thread(target=keep_sending)
    sending.start()
    try:
        before = detected(bed.agent, SPOOFING_UE, 1, start)
        last = next_interval(url)
        first_run = counted(url, start)
        out = stop_agent(bed.agent.proc)
        assert bed.agent.proc.returncode == 0, out[-3000:]
        kept = StateFile(bed.agent.state / "checkpoint", CHECKPOINT_FORMAT).load(Reading)
        assert kept is not None
        # the stopped agent's last interval is the one read
        assert kept.at == last, (kept.at, last)
        time.sleep(1.0)  # sent while no agent runs
        proc, url = start_agent(bed.agent.config)
        bed.agent.proc, bed.agent.url = proc, url
        assert readyz(url)["data_path"]["how"] == "adopted"
        time.sleep(1.0)
    finally:
        stop.set()
        sending.join()
    print(f"first run {dict(first_run)}, sent {dict(truth)}")
    assert first_run and first_run != truth
    second_run = settled(url, 0.0, truth - first_run)
    assert first_run + second_run == truth
    bed.injected.update(truth)
    # the data path's own counts: these frames and nothing else, in any slice
    assert in_the_data_path(bed.agent) == bed.injected
    spoofed = truth[("urllc", SPOOFED)]
    after = detected(bed.agent, SPOOFING_UE, spoofed, start)
    assert after.id == before.id and before.count < spoofed
    assert (after.slice_id, after.peer, after.teids, after.count, after.distinct) == (
        slice_id("urllc"),
        N3_GNB,
        (TEID["urllc"],),
        spoofed,
        len(RESTART_SOURCES),
    )


def test_peers_learned_from_sessions_are_checked(bed: Bed) -> None:
    """The agent started again with no peer configured (`security.peers:
    []`, the same data path) and nothing learned: a stranger's G-PDUs are
    not checked for their outer source, there is no list. Once an SMF
    points a session's downlink at the gNB, the gNB's N3 address is a peer
    the agent learned, and the stranger's frames count as unknown peers,
    also after the session ended (a gNB stays one), and after the agent
    restarts (the next agent takes the learned peers over)."""
    config = yaml.safe_load(bed.agent.config.read_text())
    config["security"]["peers"] = []
    bed.agent.config.write_text(yaml.safe_dump(config))
    url = restart(bed, forget_peers=True)
    stranger = CATALOG_CASES[7]
    assert stranger.outer == STRANGER and stranger.kinds == (UNKNOWN_PEER,)
    truth: Counter[tuple[str, str]] = Counter()
    start = next_interval(url)
    bed.gnb.play([replace(stranger, kinds=())], truth)
    assert settled(url, start, truth) == truth == Counter()
    with n4(bed) as smf:
        session = smf.establish(0xC2, LEARNED_UE, EMBB_SNSSAI, "internet")
        smf.modify_downlink(session.up_seid, 0x90002, N3_GNB)
        sessions_listed(bed, 1)
        next_interval(url)  # the interval that learns the peer
        start = next_interval(url)
        bed.gnb.play([stranger], truth)
        assert settled(url, start, truth) == truth == {("urllc", UNKNOWN_PEER): 4}
        smf.delete(session.up_seid)
        sessions_listed(bed, 0)
    next_interval(url)
    bed.gnb.play([stranger], truth)
    assert settled(url, start, truth) == truth == {("urllc", UNKNOWN_PEER): 8}
    url = restart(bed)
    start = next_interval(url)
    bed.gnb.play([stranger], truth)
    after_restart = Counter({("urllc", UNKNOWN_PEER): 4})
    assert settled(url, start, after_restart) == after_restart
    assert truth == {("urllc", UNKNOWN_PEER): 12}
    assert get_json(f"{url}/api/v1/security")["checks"]["peers_learned"] == [N3_GNB]
    bed.injected.update(truth)
    assert in_the_data_path(bed.agent) == bed.injected
