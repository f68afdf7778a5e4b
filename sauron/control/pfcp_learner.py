"""The PFCP learner: session messages in, PDU sessions out.

Sessions are known by the SMF's address and SEID (the CP F-SEID of the
establishment request); requests the SMF sends later name the UPF's SEID,
learned from the establishment response. The request installs the rules,
the response fills in what the UPF chose (CHOOSE F-TEIDs in Created PDRs),
modifications merge, deletion forgets. Applying a message twice (a
retransmission, or a capture taken on several interfaces) changes nothing.

A message that cannot be decoded, or that names a session never seen, is
counted by reason and otherwise ignored."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TypeVar

from sauron.control.record import ControlSession, Tunnel
from sauron.pfcp import ies
from sauron.pfcp import messages as m
from sauron.pfcp.wire import PfcpError, split_messages


@dataclass
class _Rules:
    """The session's rules as the UPF holds them."""

    pdrs: dict[int, m.Pdr] = field(default_factory=dict)
    endpoints: dict[int, m.Pdr] = field(default_factory=dict)
    fars: dict[int, m.Far] = field(default_factory=dict)
    qer_qfis: dict[int, int] = field(default_factory=dict)


Rule = TypeVar("Rule", m.Pdr, m.Far)


def _merge(old: Rule | None, new: Rule) -> Rule:
    """An Update PDR or FAR carries only what changes: each field it leaves
    out (None, or empty) keeps the value it had."""
    if old is None:
        return new
    kept = {
        f.name: getattr(old, f.name) for f in fields(new) if getattr(new, f.name) in (None, "", [])
    }
    return replace(new, **kept)


def _address(f: ies.FTeid | ies.OuterHeader) -> str | None:
    return f.ipv4 or f.ipv6


def _interface(value: int | None) -> str:
    return "unknown" if value is None else ies.INTERFACE_NAMES.get(value, f"interface-{value}")


#: how long a deleted session still answers for its SEIDs, so that the
#: deletion response and copies of the request are not "unknown"
DELETED_KEPT_S = 30.0


@dataclass
class LearnedSession:
    """A session as the learner holds it: the row it reports, and the
    rules the UPF holds, which later modifications merge into."""

    session: ControlSession
    rules: _Rules = field(default_factory=_Rules)
    sequence: int | None = None
    deleted_at: float | None = None

    def refresh(self) -> None:
        """Derives the session's tunnels, addresses and flows from its rules."""
        s, r = self.session, self.rules
        tunnels: set[Tunnel] = set()
        ues: list[str] = []
        names: list[str] = []
        qfis: set[int] = set(r.qer_qfis.values())
        for pdr in [*r.pdrs.values(), *r.endpoints.values()]:
            endpoint = r.endpoints.get(pdr.traffic_endpoint) if pdr.traffic_endpoint else None
            f_teid = pdr.f_teid or (endpoint.f_teid if endpoint else None)
            if f_teid is not None and f_teid.teid is not None:
                interface = _interface(pdr.source_interface)
                tunnels.add(Tunnel(f_teid.teid, _address(f_teid), interface, True))
            ue = pdr.ue or (endpoint.ue if endpoint else None)
            if ue is not None:
                if ue.ipv4 and ue.ipv4 not in ues:
                    ues.append(ue.ipv4)
                if ue.ipv6:
                    text = ue.ipv6 if ue.ipv6_prefix == 128 else f"{ue.ipv6}/{ue.ipv6_prefix}"
                    if text not in ues:
                        ues.append(text)
            if pdr.network_instance and pdr.network_instance not in names:
                names.append(pdr.network_instance)
            qfis.update(pdr.qfis)
        for far in r.fars.values():
            if far.outer is not None and far.outer.teid is not None:
                interface = _interface(far.destination_interface)
                tunnels.add(Tunnel(far.outer.teid, _address(far.outer), interface, False))
            if far.network_instance and far.network_instance not in names:
                names.append(far.network_instance)
        s.tunnels = sorted(tunnels, key=Tunnel.sort_key)
        s.ue_addresses = ues
        s.network_instances = names
        s.qfis = sorted(qfis)


Listener = Callable[[ControlSession], None]


class PfcpLearner:
    """Feeds on PFCP datagrams (with the addresses they travelled between)
    and reports sessions as they are learned, change and go."""

    def __init__(
        self,
        on_change: Listener | None = None,
        on_remove: Listener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.on_change = on_change or (lambda s: None)
        self.on_remove = on_remove or (lambda s: None)
        self.clock = clock
        self.by_cp: dict[tuple[str, int], LearnedSession] = {}
        self.by_up: dict[tuple[str, int], LearnedSession] = {}
        self._deleted: deque[LearnedSession] = deque()
        #: every message seen, by type name ("unknown_<n>" for others)
        self.messages: Counter[str] = Counter()
        #: session messages used, by type name
        self.applied: Counter[str] = Counter()
        #: datagrams or messages not used, by reason
        self.rejects: Counter[str] = Counter()

    @property
    def sessions(self) -> list[ControlSession]:
        return [p.session for p in self.by_cp.values() if p.deleted_at is None]

    def live(self) -> list[LearnedSession]:
        """The sessions not deleted, with their rules: what a later agent
        needs to follow their modifications and deletions."""
        return [p for p in self.by_cp.values() if p.deleted_at is None]

    def restore(self, learned: list[LearnedSession]) -> None:
        """Takes back the sessions an earlier learner held (live()), known
        again by both SEIDs; the listeners are not told (the caller puts
        the sessions back in its table)."""
        for p in learned:
            s = p.session
            self.by_cp[(s.smf or "", s.seid or 0)] = p
            if s.up_seid is not None:
                self.by_up[(s.upf or "", s.up_seid)] = p

    def feed(self, payload: bytes, src: str, dst: str, at: float | None = None) -> None:
        """One UDP payload from `src` to `dst`. Never raises on bad input."""
        now = self.clock() if at is None else at
        self._purge(now)
        try:
            for header in split_messages(payload):
                name = m.MESSAGE_NAMES.get(header.msg_type, f"unknown_{header.msg_type}")
                self.messages[name] += 1
                if header.msg_type not in m.SESSION_TYPES:
                    continue
                if header.seid is None:
                    self.rejects["session_message_without_seid"] += 1
                    continue
                try:
                    msg = m.decode_session_message(payload, header)
                except PfcpError as exc:
                    self.rejects[exc.reason] += 1
                    continue
                if not m.MANDATORY.get(msg.msg_type, frozenset()) <= msg.present:
                    self.rejects[f"{msg.name}_missing_mandatory_ie"] += 1
                    continue
                if self._apply(msg, src, dst, now):
                    self.applied[msg.name] += 1
        except PfcpError as exc:
            self.rejects[exc.reason] += 1

    def _apply(self, msg: m.SessionMessage, src: str, dst: str, now: float) -> bool:
        """False when the message was rejected (and counted)."""
        assert msg.seid is not None
        kind = msg.msg_type
        if kind == m.SESSION_ESTABLISHMENT_REQUEST:
            self._establish(msg, src, dst, now)
            return True
        # responses and UPF-initiated requests go to the SMF, naming its SEID
        to_smf = kind in (
            m.SESSION_ESTABLISHMENT_RESPONSE,
            m.SESSION_MODIFICATION_RESPONSE,
            m.SESSION_DELETION_RESPONSE,
            m.SESSION_REPORT_REQUEST,
        )
        known = (self.by_cp if to_smf else self.by_up).get((dst, msg.seid))
        if known is None:
            self.rejects[f"{msg.name}_for_unknown_session"] += 1
            return False
        if known.deleted_at is not None:
            return True  # the deletion's response, or another copy of it
        known.session.last_seen = now
        if kind in (m.SESSION_DELETION_REQUEST, m.SESSION_DELETION_RESPONSE):
            self._delete(known, now)
            return True
        if kind in (m.SESSION_REPORT_REQUEST, m.SESSION_REPORT_RESPONSE):
            return True
        if to_smf and msg.cause is not None and msg.cause != ies.CAUSE_ACCEPTED:
            # the UPF refused: counted. A modification was applied as its
            # request passed and is not undone (the refusal does not say which
            # rules failed); a refused establishment ends the session.
            self.rejects[f"{msg.name}_cause_{msg.cause}"] += 1
            if kind == m.SESSION_ESTABLISHMENT_RESPONSE:
                self._delete(known, now)
            return False
        if kind == m.SESSION_ESTABLISHMENT_RESPONSE and msg.f_seid is not None:
            known.session.up_seid = msg.f_seid.seid
            known.session.upf = src
            self.by_up[(src, msg.f_seid.seid)] = known
        self._install(known, msg)
        self._changed(known)
        return True

    def _establish(self, msg: m.SessionMessage, src: str, dst: str, now: float) -> None:
        assert msg.f_seid is not None  # mandatory
        key = (src, msg.f_seid.seid)
        old = self.by_cp.get(key)
        if old is not None and old.sequence == msg.sequence and old.deleted_at is None:
            old.session.last_seen = now  # a retransmission or a second copy
            return
        if old is not None:
            self._unindex(old)  # the SEID was reused: the old session is gone
            if old.deleted_at is None:
                self.on_remove(old.session)
        session = ControlSession(
            source="pfcp",
            key=key,
            seid=msg.f_seid.seid,
            smf=src,
            upf=dst,
            snssai=msg.snssai,
            dnn=msg.dnn,
            first_seen=now,
            last_seen=now,
        )
        learned = LearnedSession(session, sequence=msg.sequence)
        self.by_cp[key] = learned
        self._install(learned, msg)
        self._changed(learned)

    def _install(self, learned: LearnedSession, msg: m.SessionMessage) -> None:
        r = learned.rules
        for pdr in [*msg.pdrs, *msg.created_pdrs]:
            r.pdrs[pdr.rule_id] = _merge(r.pdrs.get(pdr.rule_id), pdr)
        for ep in [*msg.endpoints, *msg.created_endpoints]:
            r.endpoints[ep.rule_id] = _merge(r.endpoints.get(ep.rule_id), ep)
        for pdr_id in msg.removed_pdrs:
            r.pdrs.pop(pdr_id, None)
        for far in msg.fars:
            r.fars[far.far_id] = _merge(r.fars.get(far.far_id), far)
        for far_id in msg.removed_fars:
            r.fars.pop(far_id, None)
        r.qer_qfis.update(msg.qer_qfis)
        if msg.snssai is not None:
            learned.session.snssai = msg.snssai
        if msg.dnn is not None:
            learned.session.dnn = msg.dnn

    def _changed(self, learned: LearnedSession) -> None:
        learned.refresh()
        self.on_change(learned.session)

    def _delete(self, learned: LearnedSession, now: float) -> None:
        learned.deleted_at = now
        self._deleted.append(learned)
        self.on_remove(learned.session)

    def _unindex(self, learned: LearnedSession) -> None:
        s = learned.session
        if self.by_cp.get(s.key) is learned:
            del self.by_cp[s.key]
        if s.up_seid is not None and self.by_up.get((s.upf or "", s.up_seid)) is learned:
            del self.by_up[(s.upf or "", s.up_seid)]

    def _purge(self, now: float) -> None:
        while self._deleted and now - (self._deleted[0].deleted_at or 0.0) > DELETED_KEPT_S:
            self._unindex(self._deleted.popleft())
