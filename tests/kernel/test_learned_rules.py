"""Where learned sessions sit among the catalog's rules, checked on the real
programs with crafted G-PDUs (build, run, check): the catalog's exact TEIDs
first, then learned sessions, then TEID ranges and UE subnets; a session's
rules go with it; a rule change reaches frames of tunnels the programs had
already cached."""

from __future__ import annotations

import ipaddress
import pickle

import pytest
from frames import gtpu
from scapy.layers.inet import IP, UDP

from sauron.abi import layout
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.rules import program_catalog
from sauron.catalog import parse_catalog
from sauron.control.record import ControlSession, Tunnel
from sauron.control.registry import SessionRegistry
from sauron.control.rules import LearnedRules

pytestmark = [pytest.mark.kernel]

CATALOG = parse_catalog(
    {
        "slices": [
            {
                "name": "static",
                "id": 1,
                "snssai": {"sst": 1},
                "teids": [0x777],
                "teid_ranges": [{"first": 0x10000, "last": 0x1FFFF}],
                "ue_subnets": ["10.45.0.0/16"],
            },
            {"name": "learned", "id": 2, "snssai": {"sst": 2, "sd": "000001"}},
        ]
    },
    "test",
)
STATIC, LEARNED = 1, 2
UE, NEIGHBOUR = "10.45.0.9", "10.45.0.10"


def uplink(teid: int, src: str = UE) -> bytes:
    return gtpu(IP(src=src, dst="192.0.2.80") / UDP(sport=4000, dport=80), teid, uplink=True)


def downlink(teid: int, dst: str) -> bytes:
    return gtpu(IP(src="192.0.2.80", dst=dst) / UDP(sport=80, dport=4000), teid, uplink=False)


def slice_of(dp: DataPlane, frame: bytes, point: int = layout.POINT_N3_INGRESS) -> int:
    """No rules-generation bump here: what the agent's flush does must be enough."""
    result = libbpf.test_run(dp.program_fd(point), frame)
    assert result.retval == dp.pass_verdict(point) and result.data_out == frame
    return int(dp.last_result().slice_id)


def session(teids: list[int], ue: str) -> ControlSession:
    return ControlSession(
        source="pfcp",
        key=("10.0.0.1", 1),
        snssai=(2, 1),
        tunnels=[Tunnel(t, "10.0.0.2", "access", True) for t in teids]
        + [Tunnel(0x999, "10.0.0.9", "access", False)],
        ue_addresses=[ue],
    )


def test_learned_rules_sit_between_exact_and_range_rules(recording_dataplane: DataPlane) -> None:
    dp = recording_dataplane
    program_catalog(dp, CATALOG)
    down = layout.POINT_N3_EGRESS
    # the programs cache these tunnels with the catalog's answer
    assert slice_of(dp, uplink(0x10005)) == STATIC
    assert slice_of(dp, downlink(0x999, UE), down) == STATIC
    registry = SessionRegistry(CATALOG, LearnedRules(dp, CATALOG))
    learned = session([0x777, 0x10005], UE)
    registry.upsert(learned)
    assert (learned.slice_id, learned.slice_rule) == (LEARNED, "snssai")
    assert registry.flush()
    # the catalog's exact TEID is kept; the learned TEID beats the range
    assert slice_of(dp, uplink(0x777)) == STATIC
    assert slice_of(dp, uplink(0x10005)) == LEARNED
    # downlink: the gNB's TEID is no rule, the learned UE address beats the subnet
    assert slice_of(dp, downlink(0x999, UE), down) == LEARNED
    # (another session's gNB TEID: the programs cache a slice per TEID)
    assert slice_of(dp, downlink(0x998, NEIGHBOUR), down) == STATIC
    assert registry.rules is not None
    assert registry.rules.kept_by_catalog == {("teid", 0x777)}
    # the session ends: its traffic falls back to the catalog
    registry.remove(learned)
    assert registry.flush()
    assert slice_of(dp, uplink(0x10005)) == STATIC
    assert slice_of(dp, downlink(0x999, UE), down) == STATIC
    assert registry.rules.owned == {}


def test_two_sessions_claiming_one_teid(recording_dataplane: DataPlane) -> None:
    """The UPF reused a TEID before the old session's deletion was seen:
    the newer claim holds, and the old session's end leaves it in place."""
    dp = recording_dataplane
    program_catalog(dp, CATALOG)
    registry = SessionRegistry(CATALOG, LearnedRules(dp, CATALOG))
    old = session([0x4242], "10.99.0.1")
    new = ControlSession(
        source="pfcp",
        key=("10.0.0.1", 2),
        snssai=(1, None),
        tunnels=[Tunnel(0x4242, "10.0.0.2", "access", True)],
        ue_addresses=["10.99.0.2"],
    )
    registry.upsert(old)
    registry.upsert(new)
    registry.flush()
    assert slice_of(dp, uplink(0x4242, "10.99.0.2")) == STATIC
    registry.remove(old)
    registry.flush()
    assert slice_of(dp, uplink(0x4242, "10.99.0.2")) == STATIC
    rules = registry.rules
    assert rules is not None
    assert rules.owned[("teid", 0x4242)] == (STATIC, ("pfcp", "10.0.0.1", 2))
    assert ("ue", ipaddress.ip_network("10.99.0.1/32")) not in rules.owned


def test_a_restarted_agents_sessions_keep_their_rules_through_the_catalogs_rewrite(
    recording_dataplane: DataPlane,
) -> None:
    """The agent dies with a learned session's rules in the maps; the next
    one takes the saved session back before it rewrites the catalog's
    rules, and the rewrite leaves the session's rules in place: its frames
    never fall back to the catalog's range. A rewrite that is not told of
    them removes them (as after `sauron detach`)."""
    dp = recording_dataplane
    program_catalog(dp, CATALOG)
    first = SessionRegistry(CATALOG, LearnedRules(dp, CATALOG))
    learned = session([0x10006], NEIGHBOUR)
    first.upsert(learned)
    first.flush()
    assert slice_of(dp, uplink(0x10006, NEIGHBOUR)) == LEARNED
    # the agent dies; the next one starts from the saved sessions
    saved = pickle.loads(pickle.dumps([learned]))
    second = SessionRegistry(CATALOG, LearnedRules(dp, CATALOG))
    second.restore(saved)
    assert second.events["restored"] == 1 and second.version == 1
    assert second.rules is not None
    program_catalog(dp, CATALOG, keep=second.rules.held())
    assert slice_of(dp, uplink(0x10006, NEIGHBOUR)) == LEARNED
    assert slice_of(dp, downlink(0x999, NEIGHBOUR), layout.POINT_N3_EGRESS) == LEARNED
    program_catalog(dp, CATALOG)
    assert slice_of(dp, uplink(0x10006, NEIGHBOUR)) == STATIC
