"""PFCP session messages (TS 29.244 §7.5) decoded into what a session
learner uses: the rules that carry tunnels, UE addresses, QoS flows and
names, and the identifiers that tie requests, responses and later
messages to one session."""

from __future__ import annotations

from dataclasses import dataclass, field

from sauron.pfcp import ies
from sauron.pfcp.wire import MAX_IE_DEPTH, Header, PfcpError, iter_ies

SESSION_ESTABLISHMENT_REQUEST = 50
SESSION_ESTABLISHMENT_RESPONSE = 51
SESSION_MODIFICATION_REQUEST = 52
SESSION_MODIFICATION_RESPONSE = 53
SESSION_DELETION_REQUEST = 54
SESSION_DELETION_RESPONSE = 55
SESSION_REPORT_REQUEST = 56
SESSION_REPORT_RESPONSE = 57

MESSAGE_NAMES = {
    1: "heartbeat_request",
    2: "heartbeat_response",
    3: "pfd_management_request",
    4: "pfd_management_response",
    5: "association_setup_request",
    6: "association_setup_response",
    7: "association_update_request",
    8: "association_update_response",
    9: "association_release_request",
    10: "association_release_response",
    11: "version_not_supported_response",
    12: "node_report_request",
    13: "node_report_response",
    14: "session_set_deletion_request",
    15: "session_set_deletion_response",
    16: "session_set_modification_request",
    17: "session_set_modification_response",
    SESSION_ESTABLISHMENT_REQUEST: "session_establishment_request",
    SESSION_ESTABLISHMENT_RESPONSE: "session_establishment_response",
    SESSION_MODIFICATION_REQUEST: "session_modification_request",
    SESSION_MODIFICATION_RESPONSE: "session_modification_response",
    SESSION_DELETION_REQUEST: "session_deletion_request",
    SESSION_DELETION_RESPONSE: "session_deletion_response",
    SESSION_REPORT_REQUEST: "session_report_request",
    SESSION_REPORT_RESPONSE: "session_report_response",
}
SESSION_TYPES = frozenset(range(SESSION_ESTABLISHMENT_REQUEST, SESSION_REPORT_RESPONSE + 1))
#: IEs TS 29.244 §7.5 makes mandatory, where the learner depends on them
MANDATORY = {
    SESSION_ESTABLISHMENT_REQUEST: frozenset(
        {ies.NODE_ID, ies.F_SEID, ies.CREATE_PDR, ies.CREATE_FAR}
    ),
    SESSION_ESTABLISHMENT_RESPONSE: frozenset({ies.NODE_ID, ies.CAUSE}),
    SESSION_MODIFICATION_RESPONSE: frozenset({ies.CAUSE}),
    SESSION_DELETION_RESPONSE: frozenset({ies.CAUSE}),
}


@dataclass
class Pdr:
    """A Create/Update/Created PDR, or a Create/Created Traffic Endpoint
    (`rule_id` is then the endpoint id)."""

    rule_id: int
    source_interface: int | None = None
    f_teid: ies.FTeid | None = None
    ue: ies.UeAddress | None = None
    network_instance: str | None = None
    qfis: list[int] = field(default_factory=list)
    traffic_endpoint: int | None = None


@dataclass
class Far:
    far_id: int
    destination_interface: int | None = None
    outer: ies.OuterHeader | None = None
    network_instance: str | None = None


@dataclass
class SessionMessage:
    msg_type: int
    seid: int | None
    sequence: int
    cause: int | None = None
    #: the sender's F-SEID: the SMF's in a request, the UPF's in a response
    f_seid: ies.FSeid | None = None
    pdrs: list[Pdr] = field(default_factory=list)  # create and update
    created_pdrs: list[Pdr] = field(default_factory=list)
    removed_pdrs: list[int] = field(default_factory=list)
    endpoints: list[Pdr] = field(default_factory=list)  # create traffic endpoint
    created_endpoints: list[Pdr] = field(default_factory=list)
    fars: list[Far] = field(default_factory=list)  # create and update
    removed_fars: list[int] = field(default_factory=list)
    qer_qfis: dict[int, int] = field(default_factory=dict)
    snssai: tuple[int, int | None] | None = None
    dnn: str | None = None
    report_type: int | None = None
    #: remote F-TEIDs the UPF got a GTP-U error indication for
    error_indications: list[ies.FTeid] = field(default_factory=list)
    #: the types of the message's top-level IEs
    present: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        return MESSAGE_NAMES[self.msg_type]


def _members(data: bytes, start: int, end: int, depth: int) -> list[tuple[int, int, int]]:
    if depth > MAX_IE_DEPTH:
        raise PfcpError("ies_too_deep")
    return list(iter_ies(data, start, end))


def _rule_id(data: bytes, members: list[tuple[int, int, int]], id_type: int, size: int) -> int:
    for ie_type, start, end in members:
        if ie_type == id_type:
            return ies.uint(data[start:end], size, "rule id")
    raise PfcpError("rule_without_id", str(id_type))


def _pdi(data: bytes, start: int, end: int, pdr: Pdr, depth: int) -> None:
    for ie_type, s, e in _members(data, start, end, depth):
        value = data[s:e]
        if ie_type == ies.SOURCE_INTERFACE:
            pdr.source_interface = ies.uint(value, 1, "Source Interface") & 0x0F
        elif ie_type == ies.F_TEID:
            pdr.f_teid = ies.f_teid(value)
        elif ie_type == ies.UE_IP_ADDRESS:
            pdr.ue = ies.ue_address(value)
        elif ie_type == ies.NETWORK_INSTANCE:
            pdr.network_instance = ies.name(value)
        elif ie_type == ies.QFI:
            pdr.qfis.append(ies.uint(value, 1, "QFI") & 0x3F)
        elif ie_type == ies.TRAFFIC_ENDPOINT_ID:
            pdr.traffic_endpoint = ies.uint(value, 1, "Traffic Endpoint ID")


def _pdr(data: bytes, start: int, end: int, depth: int, id_type: int, id_size: int) -> Pdr:
    members = _members(data, start, end, depth)
    pdr = Pdr(_rule_id(data, members, id_type, id_size))
    if id_type == ies.TRAFFIC_ENDPOINT_ID:
        # a traffic endpoint holds the PDI's fields itself
        _pdi(data, start, end, pdr, depth)
        return pdr
    for ie_type, s, e in members:
        if ie_type == ies.PDI:
            _pdi(data, s, e, pdr, depth + 1)
        elif ie_type in (ies.F_TEID, ies.UE_IP_ADDRESS):  # Created PDR
            _pdi(data, start, end, pdr, depth)
            break
    return pdr


def _far(data: bytes, start: int, end: int, depth: int) -> Far:
    members = _members(data, start, end, depth)
    far = Far(_rule_id(data, members, ies.FAR_ID, 4))
    for ie_type, s, e in members:
        if ie_type not in (ies.FORWARDING_PARAMETERS, ies.UPDATE_FORWARDING_PARAMETERS):
            continue
        for inner, fs, fe in _members(data, s, e, depth + 1):
            value = data[fs:fe]
            if inner == ies.DESTINATION_INTERFACE:
                far.destination_interface = ies.uint(value, 1, "Destination Interface") & 0x0F
            elif inner == ies.OUTER_HEADER_CREATION:
                far.outer = ies.outer_header(value)
            elif inner == ies.NETWORK_INSTANCE:
                far.network_instance = ies.name(value)
    return far


def decode_session_message(data: bytes, header: Header) -> SessionMessage:
    """One session message's IEs, walked to the depth real messages use.
    IEs the learner has no use for are skipped by their lengths."""
    msg = SessionMessage(header.msg_type, header.seid, header.sequence)
    for ie_type, s, e in _members(data, header.body_start, header.body_end, 1):
        value = data[s:e]
        msg.present.add(ie_type)
        if ie_type in (ies.CREATE_PDR, ies.UPDATE_PDR):
            msg.pdrs.append(_pdr(data, s, e, 2, ies.PDR_ID, 2))
        elif ie_type == ies.CREATED_PDR:
            msg.created_pdrs.append(_pdr(data, s, e, 2, ies.PDR_ID, 2))
        elif ie_type == ies.REMOVE_PDR:
            msg.removed_pdrs.append(_rule_id(data, _members(data, s, e, 2), ies.PDR_ID, 2))
        elif ie_type in (ies.CREATE_FAR, ies.UPDATE_FAR):
            msg.fars.append(_far(data, s, e, 2))
        elif ie_type == ies.REMOVE_FAR:
            msg.removed_fars.append(_rule_id(data, _members(data, s, e, 2), ies.FAR_ID, 4))
        elif ie_type in (ies.CREATE_QER, ies.UPDATE_QER):
            members = _members(data, s, e, 2)
            qer_id = _rule_id(data, members, ies.QER_ID, 4)
            for inner, qs, qe in members:
                if inner == ies.QFI:
                    msg.qer_qfis[qer_id] = ies.uint(data[qs:qe], 1, "QFI") & 0x3F
        elif ie_type == ies.CREATE_TRAFFIC_ENDPOINT:
            msg.endpoints.append(_pdr(data, s, e, 2, ies.TRAFFIC_ENDPOINT_ID, 1))
        elif ie_type == ies.CREATED_TRAFFIC_ENDPOINT:
            msg.created_endpoints.append(_pdr(data, s, e, 2, ies.TRAFFIC_ENDPOINT_ID, 1))
        elif ie_type == ies.CAUSE:
            msg.cause = ies.uint(value, 1, "Cause")
        elif ie_type == ies.F_SEID:
            msg.f_seid = ies.f_seid(value)
        elif ie_type == ies.S_NSSAI:
            msg.snssai = ies.snssai(value)
        elif ie_type == ies.APN_DNN:
            msg.dnn = ies.name(value)
        elif ie_type == ies.REPORT_TYPE:
            msg.report_type = ies.uint(value, 1, "Report Type")
        elif ie_type == ies.ERROR_INDICATION_REPORT:
            for inner, fs, fe in _members(data, s, e, 2):
                if inner == ies.F_TEID:
                    msg.error_indications.append(ies.f_teid(data[fs:fe]))
    return msg
