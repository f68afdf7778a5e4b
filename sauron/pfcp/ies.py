"""The PFCP information elements a session learner needs (TS 29.244 §8.2),
decoded from their bytes. Each decoder gets the IE's value and checks its
length against the flags before reading."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sauron.pfcp.wire import PfcpError

# IE types (TS 29.244 table 8.1.2-1)
CREATE_PDR = 1
PDI = 2
CREATE_FAR = 3
FORWARDING_PARAMETERS = 4
CREATE_QER = 7
CREATED_PDR = 8
UPDATE_PDR = 9
UPDATE_FAR = 10
UPDATE_FORWARDING_PARAMETERS = 11
UPDATE_QER = 14
REMOVE_PDR = 15
REMOVE_FAR = 16
REMOVE_QER = 17
CAUSE = 19
SOURCE_INTERFACE = 20
F_TEID = 21
NETWORK_INSTANCE = 22
REPORT_TYPE = 39
DESTINATION_INTERFACE = 42
APPLY_ACTION = 44
PDR_ID = 56
F_SEID = 57
NODE_ID = 60
OUTER_HEADER_CREATION = 84
UE_IP_ADDRESS = 93
ERROR_INDICATION_REPORT = 99
FAR_ID = 108
QER_ID = 109
QFI = 124
CREATE_TRAFFIC_ENDPOINT = 127
CREATED_TRAFFIC_ENDPOINT = 128
TRAFFIC_ENDPOINT_ID = 131
APN_DNN = 159
S_NSSAI = 257

#: grouped IEs whose members the message decoder walks
GROUPED = frozenset(
    {
        CREATE_PDR,
        PDI,
        CREATE_FAR,
        FORWARDING_PARAMETERS,
        CREATE_QER,
        CREATED_PDR,
        UPDATE_PDR,
        UPDATE_FAR,
        UPDATE_FORWARDING_PARAMETERS,
        UPDATE_QER,
        REMOVE_PDR,
        REMOVE_FAR,
        REMOVE_QER,
        ERROR_INDICATION_REPORT,
        CREATE_TRAFFIC_ENDPOINT,
        CREATED_TRAFFIC_ENDPOINT,
    }
)

CAUSE_ACCEPTED = 1
INTERFACE_ACCESS = 0  # N3 / S1-U: the gNB side
INTERFACE_CORE = 1  # N6 / N9 towards the core
#: Source and Destination Interface values (TS 29.244 §8.2.2)
INTERFACE_NAMES = {0: "access", 1: "core", 2: "sgi-lan", 3: "cp-function", 4: "5g-vn-internal"}
REPORT_TYPE_ERIR = 0x08  # error indication report


@dataclass(frozen=True)
class FTeid:
    """Fully qualified TEID; `choose` asks the UPF to allocate it."""

    teid: int | None
    ipv4: str | None
    ipv6: str | None
    choose: bool
    choose_id: int | None = None


@dataclass(frozen=True)
class UeAddress:
    ipv4: str | None
    ipv6: str | None
    #: the prefix length of an IPv6 address (delegated prefix), else 128
    ipv6_prefix: int
    choose: bool


@dataclass(frozen=True)
class OuterHeader:
    """Outer Header Creation: the far end's TEID and address."""

    teid: int | None
    ipv4: str | None
    ipv6: str | None


@dataclass(frozen=True)
class FSeid:
    seid: int
    ipv4: str | None
    ipv6: str | None


def _need(value: bytes, size: int, what: str) -> None:
    if len(value) < size:
        raise PfcpError("short_ie", f"{what}: {len(value)} < {size} bytes")


def _ipv4(value: bytes, at: int) -> str:
    return str(ipaddress.IPv4Address(value[at : at + 4]))


def _ipv6(value: bytes, at: int) -> str:
    return str(ipaddress.IPv6Address(value[at : at + 16]))


def _addresses(
    value: bytes, pos: int, v4: int, v6: int, what: str
) -> tuple[str | None, str | None, int]:
    """An IPv4 then an IPv6 address at pos, each present when its flag is;
    (ipv4, ipv6, the position after them)."""
    _need(value, pos + (4 if v4 else 0) + (16 if v6 else 0), what)
    ipv4 = ipv6 = None
    if v4:
        ipv4 = _ipv4(value, pos)
        pos += 4
    if v6:
        ipv6 = _ipv6(value, pos)
        pos += 16
    return ipv4, ipv6, pos


def uint(value: bytes, size: int, what: str) -> int:
    _need(value, size, what)
    return int.from_bytes(value[:size], "big")


def f_teid(value: bytes) -> FTeid:
    _need(value, 1, "F-TEID")
    flags = value[0]
    v4, v6, choose, chid = flags & 0x01, flags & 0x02, flags & 0x04, flags & 0x08
    if choose:
        choose_id = None
        if chid:
            _need(value, 2, "F-TEID CHOOSE ID")
            choose_id = value[1]
        return FTeid(None, None, None, True, choose_id)
    _need(value, 5, "F-TEID")
    ipv4, ipv6, _ = _addresses(value, 5, v4, v6, "F-TEID")
    return FTeid(int.from_bytes(value[1:5], "big"), ipv4, ipv6, False)


def ue_address(value: bytes) -> UeAddress:
    _need(value, 1, "UE IP Address")
    flags = value[0]
    v6, v4, v6d = flags & 0x01, flags & 0x02, flags & 0x08
    choose = bool(flags & 0x30)  # CHV4 / CHV6: the UPF assigns it
    ipv4, ipv6, pos = _addresses(value, 1, v4, v6, "UE IP Address")
    prefix = 128
    if v6d:
        _need(value, pos + 1, "UE IP Address prefix length")
        prefix = value[pos]
        if not 0 < prefix <= 128:
            raise PfcpError("bad_ipv6_prefix", str(prefix))
    return UeAddress(ipv4, ipv6, prefix, choose)


def outer_header(value: bytes) -> OuterHeader:
    _need(value, 2, "Outer Header Creation")
    description = value[0]
    gtpu_v4, gtpu_v6 = description & 0x01, description & 0x02
    udp_v4, udp_v6 = description & 0x04, description & 0x08
    pos = 2
    teid = None
    if gtpu_v4 or gtpu_v6:
        _need(value, pos + 4, "Outer Header Creation TEID")
        teid = int.from_bytes(value[pos : pos + 4], "big")
        pos += 4
    ipv4, ipv6, _ = _addresses(
        value, pos, gtpu_v4 | udp_v4, gtpu_v6 | udp_v6, "Outer Header Creation"
    )
    return OuterHeader(teid, ipv4, ipv6)


def f_seid(value: bytes) -> FSeid:
    _need(value, 9, "F-SEID")
    v6, v4 = value[0] & 0x01, value[0] & 0x02
    ipv4, ipv6, _ = _addresses(value, 9, v4, v6, "F-SEID")
    return FSeid(int.from_bytes(value[1:9], "big"), ipv4, ipv6)


def snssai(value: bytes) -> tuple[int, int | None]:
    """(SST, SD); SD is None when absent. 0xFFFFFF ("no SD", TS 23.003) is
    kept as sent."""
    _need(value, 1, "S-NSSAI")
    sd = int.from_bytes(value[1:4], "big") if len(value) >= 4 else None
    return value[0], sd


def name(value: bytes) -> str:
    """APN/DNN and Network Instance: DNS-style length-prefixed labels
    (TS 23.003 §9.1) when they parse as such, else the bytes as text."""
    labels: list[bytes] = []
    pos = 0
    while pos < len(value):
        size = value[pos]
        if size == 0 or pos + 1 + size > len(value):
            labels = []
            break
        labels.append(value[pos + 1 : pos + 1 + size])
        pos += 1 + size
    raw = b".".join(labels) if labels else value
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise PfcpError("name_not_text", raw[:16].hex()) from None
    if not text.isprintable():
        raise PfcpError("name_not_text", raw[:16].hex())
    return text
