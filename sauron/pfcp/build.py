"""Encoding PFCP session messages: what the testbed's SMF and UPF send, and
what the tests build frames from. The decoder never uses it."""

from __future__ import annotations

import ipaddress
import struct

from sauron.pfcp import ies
from sauron.pfcp.wire import PFCP_VERSION


def ie(ie_type: int, value: bytes) -> bytes:
    return struct.pack("!HH", ie_type, len(value)) + value


def group(ie_type: int, *members: bytes) -> bytes:
    return ie(ie_type, b"".join(members))


def message(msg_type: int, seid: int | None, sequence: int, *body: bytes) -> bytes:
    payload = b"".join(body)
    flags = PFCP_VERSION << 5
    head = b""
    if seid is not None:
        flags |= 0x01
        head = struct.pack("!Q", seid)
    head += sequence.to_bytes(3, "big") + b"\x00"
    return struct.pack("!BBH", flags, msg_type, len(head) + len(payload)) + head + payload


def node_id(address: str) -> bytes:
    return ie(ies.NODE_ID, b"\x00" + ipaddress.IPv4Address(address).packed)


def f_seid(seid: int, address: str) -> bytes:
    return ie(ies.F_SEID, b"\x02" + struct.pack("!Q", seid) + ipaddress.IPv4Address(address).packed)


def f_teid(teid: int | None, address: str | None = None) -> bytes:
    if teid is None:  # CHOOSE, IPv4
        return ie(ies.F_TEID, b"\x05")
    assert address is not None
    return ie(ies.F_TEID, b"\x01" + struct.pack("!I", teid) + ipaddress.IPv4Address(address).packed)


def ue_ip(address: str) -> bytes:
    ip = ipaddress.ip_address(address)
    flags = 0x02 if ip.version == 4 else 0x01
    return ie(ies.UE_IP_ADDRESS, bytes([flags]) + ip.packed)


def dns_labels(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split("."))


def create_pdr(
    pdr_id: int,
    source_interface: int,
    teid: int | None = None,
    teid_address: str | None = None,
    ue: str | None = None,
    network_instance: str | None = None,
    qfi: int | None = None,
    far_id: int = 1,
    *,
    choose: bool = False,
    update: bool = False,
) -> bytes:
    pdi = [ie(ies.SOURCE_INTERFACE, bytes([source_interface]))]
    if choose:
        pdi.append(f_teid(None))
    elif teid is not None:
        pdi.append(f_teid(teid, teid_address))
    if network_instance:
        pdi.append(ie(ies.NETWORK_INSTANCE, dns_labels(network_instance)))
    if ue:
        pdi.append(ue_ip(ue))
    if qfi is not None:
        pdi.append(ie(ies.QFI, bytes([qfi])))
    return group(
        ies.UPDATE_PDR if update else ies.CREATE_PDR,
        ie(ies.PDR_ID, struct.pack("!H", pdr_id)),
        group(ies.PDI, *pdi),
        ie(ies.FAR_ID, struct.pack("!I", far_id)),
    )


def create_far(
    far_id: int,
    destination_interface: int,
    teid: int | None = None,
    address: str | None = None,
    *,
    update: bool = False,
) -> bytes:
    params = [ie(ies.DESTINATION_INTERFACE, bytes([destination_interface]))]
    if teid is not None and address is not None:
        ohc = b"\x01\x00" + struct.pack("!I", teid) + ipaddress.IPv4Address(address).packed
        params.append(ie(ies.OUTER_HEADER_CREATION, ohc))
    return group(
        ies.UPDATE_FAR if update else ies.CREATE_FAR,
        ie(ies.FAR_ID, struct.pack("!I", far_id)),
        ie(ies.APPLY_ACTION, b"\x02"),  # forward
        group(ies.UPDATE_FORWARDING_PARAMETERS if update else ies.FORWARDING_PARAMETERS, *params),
    )


def created_pdr(pdr_id: int, teid: int, address: str) -> bytes:
    return group(ies.CREATED_PDR, ie(ies.PDR_ID, struct.pack("!H", pdr_id)), f_teid(teid, address))


def snssai(sst: int, sd: int | None) -> bytes:
    return ie(ies.S_NSSAI, bytes([sst]) + (b"" if sd is None else sd.to_bytes(3, "big")))


def cause(value: int = ies.CAUSE_ACCEPTED) -> bytes:
    return ie(ies.CAUSE, bytes([value]))


def remove_pdr(pdr_id: int) -> bytes:
    return group(ies.REMOVE_PDR, ie(ies.PDR_ID, struct.pack("!H", pdr_id)))
