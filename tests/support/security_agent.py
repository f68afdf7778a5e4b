"""An agent whose security checks found something, without the kernel: the
runtime over a data plane the test feeds (three intervals of failed checks
per slice and kind), and its detections from a real Detector
(sauron.security.detect) fed observations the test makes, behind what the
service reads of sauron.agent.securing.Securing (events(), status()).
Securing itself needs the data path's maps to set the checks in; DetectorLog
stands in for it, and for the kernel entries it drains."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from fake_data_plane import FakeDataPlane
from manual_clock import ManualClock

from sauron.abi import layout
from sauron.abi.kpis import SECURITY_KPIS
from sauron.agent.runtime import AgentRuntime
from sauron.catalog import Catalog, load_catalog
from sauron.security.detect import Detector, Observation, SecurityEvent
from sauron.service.app import ServiceOptions, create_app


class DetectorLog:
    """What the service reads of Securing: the detector's events, and a
    status of the same keys as Securing.status() (the property tests hold
    the real one to the schema)."""

    def __init__(
        self, scan_threshold: int = 4, spoof_threshold: int = 2, quiet_s: float = 2.0
    ) -> None:
        self.detector = Detector(scan_threshold, spoof_threshold, quiet_s=quiet_s)
        self.peers = ["10.10.3.100"]

    def scan(self, peer: str, slice_id: int, teids: list[int], at: float) -> None:
        """Frames from `peer` to each unknown TEID, one after the other."""
        self.feed(
            [
                Observation(
                    layout.SEC_UNKNOWN_TEID, t, peer, peer, slice_id, at + i / 100, at + i / 100, 3
                )
                for i, t in enumerate(teids)
            ],
            at + 1,
        )

    def spoof(self, teid: int, peer: str, slice_id: int, sources: list[str], at: float) -> None:
        """Frames of one session's TEID from sources not its own."""
        self.feed(
            [
                Observation(layout.SEC_UE_SOURCE_SPOOFED, teid, s, peer, slice_id, at, at + 0.1, 2)
                for s in sources
            ],
            at + 1,
        )

    def feed(self, observations: list[Observation], now: float) -> list[SecurityEvent]:
        """What the interval ending at `now` noted (Securing.on_snapshot's)."""
        return self.detector.feed(observations, now)

    def events(self) -> list[SecurityEvent]:
        return self.detector.events()

    def status(self) -> dict[str, object]:
        return {
            "enabled": True,
            "peers_checked": True,
            "peers_configured": self.peers,
            "peers_learned": [],
            "protected": ["10.10.0.0/16"],
            "scan_threshold": self.detector.thresholds["teid_scan"],
            "spoof_threshold": self.detector.thresholds["spoofing_ue"],
            "quiet_s": self.detector.quiet_s,
        }


CATALOG = load_catalog()
TOKEN = "security-reader-0123"
EMBB, URLLC = 1, 2
START = 1_000_000.0
KINDS = [k.name for k in SECURITY_KPIS]
#: the scan's TEIDs: none in the catalog's ranges, nor any session's
SCAN_TEIDS = [0x0F000001, 0x0F000002, 0x0F000003, 0x0F000004, 0x0F000005]


def frames(**counts: int) -> dict[str, int]:
    return {kind: counts.get(kind, 0) for kind in KINDS}


class Agent:
    """Three intervals (1 s, 1 s, 2 s) with known failed checks, and a
    scan (eMBB, in the first) and a spoofing UE (URLLC, in the third)."""

    def __init__(self, on: bool = True, start: float = START, catalog: Catalog = CATALOG) -> None:
        self.data = FakeDataPlane(catalog)
        self.data.security_on = on
        self.start = start
        self.clock = ManualClock(start)
        self.runtime = AgentRuntime(catalog, self.data, clock=self.clock)
        self.log = DetectorLog()
        if not on:
            return
        self.runtime.security = self.log
        self.interval(1, {(EMBB, layout.SEC_UNKNOWN_TEID): 5, (URLLC, layout.SEC_GTP_IN_GTP): 2})
        self.log.scan("10.10.3.7", EMBB, SCAN_TEIDS, start + 0.5)
        self.interval(
            1, {(EMBB, layout.SEC_UNKNOWN_TEID): 7, (EMBB, layout.SEC_UE_SOURCE_SPOOFED): 1}
        )
        self.interval(2, {(EMBB, layout.SEC_UNKNOWN_TEID): 3, (URLLC, layout.SEC_UNKNOWN_PEER): 4})
        self.log.spoof(0x00020011, "10.10.3.100", URLLC, ["10.46.0.9", "8.8.8.8"], start + 3.5)

    def interval(self, seconds: float, failed: dict[tuple[int, int], int]) -> None:
        for (slice_id, kind), n in failed.items():
            self.data.failed_check(slice_id, kind, n)
        self.clock.t += seconds
        self.runtime.engine.tick()

    def ask(self, body: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
        """`body` asks the service, which has a token (as a deployed agent
        listening beyond loopback does)."""

        async def run() -> None:
            app = create_app(self.runtime, ServiceOptions(token=TOKEN, rate_per_s=0))
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with TestClient(TestServer(app), headers=auth) as client:
                await body(client)

        asyncio.run(run())
