"""The agent configuration's `security:` section: whether the data path's
checks run, what they check against, and the detections' thresholds
(docs/security.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, IPvAnyNetwork

from sauron.abi import layout
from sauron.security.thresholds import QUIET_S, SCAN_THRESHOLD, SPOOF_THRESHOLD


class SecurityConfig(BaseModel):
    """Checks on every uplink G-PDU at N3/N9 (spoofed UE sources, unknown
    TEIDs, GTP inside GTP, traffic to the core's own networks, unknown
    peers) counted per slice, and the scans and spoofing UEs made of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: false: no frame is checked (the data path saves about 20 ns a G-PDU)
    enabled: bool = True
    #: the gNBs and peer UPFs that may send G-PDUs (outer source addresses);
    #: with none here and none learned, no frame is counted as unknown_peer
    peers: Annotated[list[IPvAnyAddress], Field(max_length=layout.MAX_KNOWN_PEERS)] = []
    #: also take as peers the far tunnel ends of the sessions learned from
    #: PFCP or an SMF feed (a gNB's is its N3 address)
    learn_peers: bool = True
    #: the core's own networks (N3, N4, N6 gateways, SBI): an inner
    #: destination in one is counted as inner_to_core
    protected: Annotated[list[IPvAnyNetwork], Field(max_length=layout.MAX_PROTECTED)] = []
    #: distinct unknown TEIDs from one outer source within a second that make a teid_scan
    scan_threshold: Annotated[int, Field(ge=2, le=1_000_000)] = SCAN_THRESHOLD
    #: distinct sources not its own one session sends from within a second: a spoofing_ue
    spoof_threshold: Annotated[int, Field(ge=2, le=1_000_000)] = SPOOF_THRESHOLD
    #: seconds without a new frame after which a scan or spoofing UE has ended
    quiet_s: Annotated[float, Field(gt=0, le=86_400)] = QUIET_S
