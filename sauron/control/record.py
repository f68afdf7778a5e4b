"""One PDU session as the control plane described it: the row of the
agent's session table, whatever source it came from."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

#: 0xFFFFFF in the SD means "no SD" (TS 23.003 §28.4.2)
NO_SD = 0xFFFFFF


@dataclass(frozen=True)
class Tunnel:
    """A GTP-U tunnel end of the session. `local` ends are the UPF's own
    F-TEIDs, where traffic from `interface` arrives (access: the gNB's
    uplink); the others are far ends the UPF sends to (access: the gNB's
    downlink TEID)."""

    teid: int
    address: str | None
    interface: str  # access, core, cp-function, ...
    local: bool

    def sort_key(self) -> tuple[int, str, str, bool]:
        """TEID first; an end without an address (an F-TEID with neither
        address flag) sorts before those with one."""
        return (self.teid, self.address or "", self.interface, self.local)


@dataclass
class ControlSession:
    source: str  # "pfcp" or "smf"
    #: unique within the source: (SMF address, CP SEID) for PFCP,
    #: (SMF url, SUPI, PDU session id) for an SMF feed
    key: tuple[Any, ...]
    seid: int | None = None
    up_seid: int | None = None
    smf: str | None = None
    upf: str | None = None
    supi: str | None = None
    tunnels: list[Tunnel] = field(default_factory=list)
    ue_addresses: list[str] = field(default_factory=list)  # "a.b.c.d" or "x::y/64"
    snssai: tuple[int, int | None] | None = None
    dnn: str | None = None
    network_instances: list[str] = field(default_factory=list)
    qfis: list[int] = field(default_factory=list)
    first_seen: float = 0.0
    last_seen: float = 0.0
    #: set by the registry
    slice_id: int | None = None
    slice_rule: str | None = None

    @property
    def local_teids(self) -> list[int]:
        return sorted({t.teid for t in self.tunnels if t.local})

    @property
    def ue_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(a, strict=False) for a in self.ue_addresses]

    def doc(self, slice_name: str | None) -> dict[str, Any]:
        ue_ip = next((a for a in self.ue_addresses if ":" not in a), None) or next(
            (a.split("/")[0] for a in self.ue_addresses), None
        )
        return {
            "source": self.source,
            "seid": None if self.seid is None else f"0x{self.seid:016x}",
            "up_seid": None if self.up_seid is None else f"0x{self.up_seid:016x}",
            "smf": self.smf,
            "upf": self.upf,
            "supi": self.supi,
            "teids": [f"0x{t:08x}" for t in sorted({t.teid for t in self.tunnels})],
            "tunnels": [
                {
                    "teid": f"0x{t.teid:08x}",
                    "address": t.address,
                    "interface": t.interface,
                    "end": "upf" if t.local else "peer",
                }
                for t in sorted(self.tunnels, key=Tunnel.sort_key)
            ],
            "ue_ip": ue_ip,
            "ue_addresses": list(self.ue_addresses),
            "snssai": None
            if self.snssai is None
            else {
                "sst": self.snssai[0],
                "sd": None if self.snssai[1] is None else f"{self.snssai[1]:06x}",
            },
            "dnn": self.dnn,
            "network_instances": list(self.network_instances),
            "qfis": list(self.qfis),
            "slice": slice_name,
            "slice_rule": self.slice_rule,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }
