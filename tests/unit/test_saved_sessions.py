"""What one agent's control plane hands to the next (sauron.control.handover,
kept by sauron.agent.saved_sessions): a PFCP session learned by one agent is
followed by the next through its modification and its release, as the
first would have; sessions of sources no longer configured are left out;
the time N4 went unwatched is said; a torn or foreign file is no state."""

from __future__ import annotations

from pathlib import Path

from sauron.agent.saved_sessions import SessionFile
from sauron.catalog import load_catalog
from sauron.control.plane import ControlPlane
from sauron.control.record import ControlSession
from sauron.control.settings import ControlPlaneConfig
from sauron.pfcp import build, ies
from sauron.pfcp import messages as m

SMF, UPF, GNB = "10.0.0.1", "10.0.0.2", "10.0.0.9"
UE = "10.99.0.5"
CP_SEID, UP_SEID, TEID = 0xC3, 0x1000, 0x500
WATCHING = ControlPlaneConfig.model_validate({"pfcp": [{"name": "n4"}]})


def establishment_request() -> bytes:
    return build.message(
        m.SESSION_ESTABLISHMENT_REQUEST,
        0,
        1,
        build.node_id(SMF),
        build.f_seid(CP_SEID, SMF),
        build.create_pdr(1, ies.INTERFACE_ACCESS, choose=True, ue=UE, far_id=1),
        build.create_far(1, ies.INTERFACE_CORE),
        build.create_far(2, ies.INTERFACE_ACCESS),
        build.snssai(2, 1),
    )


def establishment_response() -> bytes:
    return build.message(
        m.SESSION_ESTABLISHMENT_RESPONSE,
        CP_SEID,
        1,
        build.node_id(UPF),
        build.cause(),
        build.f_seid(UP_SEID, UPF),
        build.created_pdr(1, TEID, UPF),
    )


def learned_then_handed_over(path: Path) -> SessionFile:
    """An agent that learned one session off N4 and kept its state."""
    store = SessionFile(path)
    first = ControlPlane(load_catalog(None), None, WATCHING, keep=store.save)
    first.learner.feed(establishment_request(), SMF, UPF)
    first.learner.feed(establishment_response(), UPF, SMF)
    assert len(first.registry.sessions) == 1
    store.save(first.state())
    return store


def test_the_next_agent_follows_a_pfcp_session_to_its_release(tmp_path: Path) -> None:
    store = learned_then_handed_over(tmp_path / "state" / "sessions")
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "sessions").stat().st_mode & 0o777 == 0o600
    saved = store.load()
    assert saved is not None
    second = ControlPlane(load_catalog(None), None, WATCHING)
    second.resume(saved, since=100.0, now=130.0)
    (session,) = second.registry.sessions.values()
    assert (session.seid, session.up_seid, session.local_teids) == (CP_SEID, UP_SEID, [TEID])
    assert second.registry.events["restored"] == 1
    assert second.status()["pfcp"]["unwatched"] == {"since": 100.0, "until": 130.0, "seconds": 30.0}
    # the SMF modifies it: the rules the first agent learned are merged into
    modify = build.message(
        m.SESSION_MODIFICATION_REQUEST,
        UP_SEID,
        2,
        build.create_far(2, ies.INTERFACE_ACCESS, 0x77, GNB, update=True),
    )
    second.learner.feed(modify, SMF, UPF)
    assert {(t.teid, t.local) for t in session.tunnels} == {(TEID, True), (0x77, False)}
    # and releases it
    second.learner.feed(build.message(m.SESSION_DELETION_REQUEST, UP_SEID, 3), SMF, UPF)
    assert second.registry.sessions == {} and not second.learner.rejects


def test_sessions_of_sources_no_longer_configured_are_left_out(tmp_path: Path) -> None:
    store = learned_then_handed_over(tmp_path / "sessions")
    saved = store.load()
    assert saved is not None
    saved.sessions.append(ControlSession(source="smf", key=("http://smf-gone:9090", "imsi-1", 1)))
    feeds_only = ControlPlaneConfig.model_validate(
        {"open5gs_smf": [{"url": "http://127.0.0.4:9090"}]}
    )
    third = ControlPlane(load_catalog(None), None, feeds_only)
    third.resume(saved, since=100.0, now=130.0)
    assert third.registry.sessions == {} and third.learner.live() == []
    assert third.status()["pfcp"]["unwatched"] is None  # N4 is not watched


def test_the_state_is_kept_only_when_it_changed(tmp_path: Path) -> None:
    kept: list[int] = []
    plane = ControlPlane(
        load_catalog(None), None, WATCHING, keep=lambda s: kept.append(len(s.sessions))
    )
    plane.learner.feed(establishment_request(), SMF, UPF)
    plane._keep_if_changed()
    plane._keep_if_changed()  # nothing changed since
    plane.learner.feed(build.message(m.SESSION_DELETION_REQUEST, 0, 3), SMF, UPF)  # unknown
    plane._keep_if_changed()
    assert kept == [1]


def test_a_torn_or_foreign_file_is_no_state(tmp_path: Path) -> None:
    path = tmp_path / "sessions"
    path.write_bytes(b"\x80\x05torn")
    assert SessionFile(path).load() is None
    path.write_bytes(b"")
    assert SessionFile(path).load() is None
    SessionFile(path).remove()
    assert not path.exists()
