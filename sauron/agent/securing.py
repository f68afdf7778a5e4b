"""The agent's security checks: set in the data path at start from the
configuration (sauron.security.settings), the known peers kept in step with
the sessions learned, and each interval, in the engine's thread right after
its tick, what the data path noted for the detections drained into the
detector (sauron.security.detect). The interval's detections go into its
snapshot, so every exporter writes them.

The detector's state (events open and ended, observations not yet part of
one) is kept across restarts like the checkpoint: the data path keeps
noting while no agent runs, and the next agent goes on from where this one
stopped."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sauron.agent.state_file import StateFile
from sauron.bpf.security import IpAddress, drain_seen, set_checks
from sauron.control.record import ControlSession
from sauron.kpi.records import Snapshot
from sauron.security.detect import Detector, SecurityEvent, observation
from sauron.security.settings import SecurityConfig
from sauron.security.thresholds import WINDOW_S

log = logging.getLogger(__name__)

#: what the state file holds; a change of SecurityState's shape changes it
FORMAT = "sauron-security-2"


@dataclass
class SecurityState:
    """What the next agent takes over: the detector, and the peers learned
    (their sessions may have ended: they stay peers)."""

    detector: Detector
    learned: frozenset[IpAddress]


def far_ends(sessions: Iterable[ControlSession]) -> set[IpAddress]:
    """The far tunnel ends of sessions: the gNBs and peer UPFs they send
    from. An end that is no IP address (a name a feed gave) is left out."""
    ends: set[IpAddress] = set()
    for session in sessions:
        for tunnel in session.tunnels:
            if tunnel.local or not tunnel.address:
                continue
            try:
                ends.add(ipaddress.ip_address(tunnel.address))
            except ValueError:
                continue
    return ends


class Securing:
    """securing.on_snapshot(snapshot) each interval. `sessions` lists the
    sessions learned and `version` tells when that list changed (the
    control plane's registry); None: no control plane, peers are the
    configured ones only."""

    def __init__(
        self,
        config: SecurityConfig,
        dataplane: Any,
        interval_s: float,
        sessions: Callable[[], Iterable[ControlSession]] | None = None,
        version: Callable[[], int] | None = None,
        keep: StateFile | None = None,
        drain: Callable[[Any], list[Any]] = drain_seen,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.dataplane = dataplane
        self.sessions, self.version = sessions, version
        self.keep = keep
        self.drain, self.monotonic, self.wall = drain, monotonic, wall
        self.configured: set[IpAddress] = {ipaddress.ip_address(str(a)) for a in config.peers}
        #: replaced whole, never changed in place: the service's thread reads it
        self.learned: frozenset[IpAddress] = frozenset()
        self._seen_version: int | None = None
        #: the detector is fed in the engine's thread and read from the service's
        self._lock = threading.Lock()
        resumed = self._resumed()
        if resumed is not None:
            self.detector, self.learned = resumed.detector, resumed.learned
        else:
            self.detector = Detector(
                config.scan_threshold,
                config.spoof_threshold,
                quiet_s=config.quiet_s,
                retain_s=WINDOW_S + 2 * interval_s,
            )
        #: the learned peers the state file holds
        self._kept_learned = self.learned
        self._learn_peers()
        self._write_checks()

    def _resumed(self) -> SecurityState | None:
        if self.keep is None:
            return None
        state = self.keep.load(SecurityState)
        if state is None:
            return None
        detector = state.detector
        detector.thresholds = dict(detector.thresholds)
        detector.thresholds.update(
            {"teid_scan": self.config.scan_threshold, "spoofing_ue": self.config.spoof_threshold}
        )
        detector.quiet_s = self.config.quiet_s
        if not self.config.learn_peers:
            return SecurityState(detector, frozenset())
        return state

    @property
    def peers(self) -> set[IpAddress] | None:
        """The peers the data path checks outer sources against; None: no
        list (none configured, none learned), so none is counted."""
        known = self.configured | self.learned
        return known or None

    def _write_checks(self) -> None:
        protected = [ipaddress.ip_network(str(n)) for n in self.config.protected]
        set_checks(self.dataplane, self.config.enabled, self.peers, protected)

    def _learn_peers(self) -> bool:
        """Adds the far ends of sessions learned since the last call; True
        when that made the list grow. Peers are kept once learned: a gNB
        whose last session ended is still a gNB."""
        if not self.config.learn_peers or self.sessions is None or self.version is None:
            return False
        version = self.version()
        if version == self._seen_version:
            return False
        try:
            ends = far_ends(self.sessions())
        except RuntimeError:  # the table changed under the listing: next interval
            return False
        self._seen_version = version
        new = ends - self.learned
        self.learned = self.learned | new
        return bool(new)

    def on_snapshot(self, snap: Snapshot) -> None:
        if not self.config.enabled:
            return
        if self._learn_peers():
            self._write_checks()
        seen = self.drain(self.dataplane)
        offset = self.wall() - self.monotonic()  # kernel times are monotonic
        observations = [
            observation(s, s.first_ns / 1e9 + offset, s.last_ns / 1e9 + offset) for s in seen
        ]
        with self._lock:
            snap.security_events = self.detector.feed(observations, snap.time)
        changed = observations or snap.security_events or self.learned != self._kept_learned
        if self.keep is not None and changed:
            # outside the lock: only this thread changes the detector, and a
            # scrape must not wait for the disk
            try:
                self.keep.save(SecurityState(self.detector, self.learned))
                self._kept_learned = self.learned
            except OSError:
                log.exception("cannot keep the security detections for the next agent")

    def opened(self) -> dict[tuple[int, str], int]:
        """Detections opened since the detector began (kept across restarts
        with it), by (slice id, detection kind), from the service's thread."""
        with self._lock:
            return dict(self.detector.opened)

    def events(self) -> list[SecurityEvent]:
        """Every detection kept, oldest first (from the service's thread)."""
        with self._lock:
            return self.detector.events()

    def status(self) -> dict[str, object]:
        """What the checks run with, for the API."""
        return {
            "enabled": self.config.enabled,
            "peers_checked": self.config.enabled and self.peers is not None,
            "peers_configured": sorted(str(a) for a in self.configured),
            "peers_learned": sorted(str(a) for a in self.learned),
            "protected": [str(n) for n in self.config.protected],
            "scan_threshold": self.config.scan_threshold,
            "spoof_threshold": self.config.spoof_threshold,
            "quiet_s": self.config.quiet_s,
        }
