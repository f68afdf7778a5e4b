"""The classification rules learned sessions add to the data path: each
UPF-side TEID of a session, and each of its UE addresses as a host route,
point at the session's slice.

Precedence, from first to last: the catalog's exact `teids`, learned
sessions, the catalog's `teid_ranges`, its `ue_subnets` (a learned host
route is a longer prefix than any subnet), its `qfis`. A learned rule never
replaces a catalog rule on the same key. The far end's TEIDs (the gNB's
downlink TEIDs) are not written: gNBs and UPFs number their TEIDs
independently, so one could collide with another session's UPF TEID;
downlink traffic is classified by its UE address instead."""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import logging
from collections import Counter
from typing import Any

from sauron.bpf.rules import ue_rule
from sauron.bpf.security import remove_session, write_session
from sauron.catalog import Catalog, IpNetwork
from sauron.control.record import ControlSession

log = logging.getLogger(__name__)

RuleKey = tuple[str, int | IpNetwork]  # ("teid", n) or ("ue", network)


class LearnedRules:
    def __init__(self, dataplane: Any, catalog: Catalog) -> None:
        self.dataplane = dataplane
        self.static_teids = {t for s in catalog.slices for t in s.spec.teids}
        self.static_subnets = {n for s in catalog.slices for n in s.spec.ue_subnets}
        #: rule -> (slice id, owning session key)
        self.owned: dict[RuleKey, tuple[int, tuple[Any, ...]]] = {}
        self.by_session: dict[tuple[Any, ...], set[RuleKey]] = {}
        self.counts: Counter[str] = Counter()
        #: learned rules not written because a catalog rule has the key
        self.kept_by_catalog: set[RuleKey] = set()
        #: per session: the TEIDs whose addresses teid_session holds (the
        #: security checks', sauron.bpf.security), and each TEID's owner
        self.addressed: dict[tuple[Any, ...], set[int]] = {}
        self.address_owner: dict[int, tuple[Any, ...]] = {}
        self.dirty = False

    def wanted(self, session: ControlSession) -> dict[RuleKey, int]:
        if session.slice_id is None:
            return {}
        rules: dict[RuleKey, int] = {}
        for teid in session.local_teids:
            if teid in self.static_teids:
                self.kept_by_catalog.add(("teid", teid))
                continue
            rules[("teid", teid)] = session.slice_id
        for network in session.ue_networks:
            if network in self.static_subnets:
                self.kept_by_catalog.add(("ue", network))
                continue
            rules[("ue", network)] = session.slice_id
        return rules

    def apply(self, owner: tuple[Any, ...], session: ControlSession | None) -> None:
        """Writes the session's rules (None: it is gone) and removes those
        it no longer has."""
        wanted = self.wanted(session) if session is not None else {}
        held = self.by_session.pop(owner, set())
        for rule in held - set(wanted):
            if self.owned.get(rule, (0, None))[1] == owner:
                del self.owned[rule]
                self._delete(rule)
        for rule, slice_id in wanted.items():
            if self.owned.get(rule) == (slice_id, owner):
                continue
            if self._write(rule, slice_id):
                self.owned[rule] = (slice_id, owner)
        if wanted:
            self.by_session[owner] = set(wanted)
        self._addresses(owner, session)

    def _addresses(self, owner: tuple[Any, ...], session: ControlSession | None) -> None:
        """Each of the session's TEIDs with the session's UE addresses, for
        the security checks: a known TEID, even when no slice took the
        session (a catalog TEID too: the session says whose it is)."""
        teids = set(session.local_teids) if session is not None else set()
        networks = session.ue_networks if session is not None else []
        for gone in self.addressed.pop(owner, set()) - teids:
            # a TEID another session took since is that session's now
            if self.address_owner.get(gone) == owner:
                del self.address_owner[gone]
                remove_session(self.dataplane, gone)
                self.dirty = True
        written = {t for t in teids if write_session(self.dataplane, t, networks)}
        for teid in written:
            self.address_owner[teid] = owner
        if written:
            self.addressed[owner] = written
            # the slots that vouched under the old addresses decide anew
            self.dirty = True
        if len(written) < len(teids):
            self.counts["session_teids_not_written"] += len(teids) - len(written)

    def flush(self) -> bool:
        """Makes cached per-session slices be decided anew when rules
        changed; True when they had."""
        if not self.dirty:
            return False
        self.dataplane.bump_rules_generation()
        self.dirty = False
        return True

    def held(self) -> dict[str, set[bytes]]:
        """The keys of the rules written, by map name: what rewriting the
        catalog's rules must leave alone (sauron.bpf.rules.program_catalog)."""
        keys: dict[str, set[bytes]] = {}
        for rule in self.owned:
            kind, value = rule
            _, key = self._table_key(rule)
            if kind == "teid":
                name = "teid_slice"
            else:
                assert isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network)
                name = "ue4_slice" if value.version == 4 else "ue6_slice"
            keys.setdefault(name, set()).add(bytes(key))
        return keys

    def _table_key(self, rule: RuleKey) -> tuple[Any, Any]:
        kind, value = rule
        if kind == "teid":
            return self.dataplane.table("teid_slice"), ctypes.c_uint32(int(value))  # type: ignore[arg-type]
        assert isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network)
        return ue_rule(self.dataplane, value)

    def _write(self, rule: RuleKey, slice_id: int) -> bool:
        table, key = self._table_key(rule)
        try:
            table[key] = ctypes.c_uint32(slice_id)
        except Exception as exc:  # bcc raises a bare Exception when the map is full
            self.counts[f"{rule[0]}_map_full"] += 1
            log.warning("learned rule not written", extra={"rule": str(rule), "error": str(exc)})
            return False
        self.counts[f"{rule[0]}_written"] += 1
        self.dirty = True
        return True

    def _delete(self, rule: RuleKey) -> None:
        table, key = self._table_key(rule)
        with contextlib.suppress(KeyError):
            del table[key]
        self.counts[f"{rule[0]}_removed"] += 1
        self.dirty = True
