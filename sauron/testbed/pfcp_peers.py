"""An SMF and a UPF that speak just enough PFCP for the testbed: the SMF
establishes, modifies and deletes sessions over real UDP; the UPF answers,
choosing TEIDs where asked (CHOOSE) and SEIDs of its own. They carry no
traffic: the agent watching N4 is what is under test."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from dataclasses import dataclass

from sauron.pfcp import build, ies
from sauron.pfcp import messages as m
from sauron.pfcp.wire import PFCP_PORT, PfcpError, split_messages


@dataclass
class Established:
    up_seid: int
    #: the UPF's F-TEID of the access PDR (chosen by it when asked)
    teid: int


class PfcpUpf:
    """Answers session requests on `sock` (bound to the UPF's N4 address)
    from a thread, until closed."""

    def __init__(self, sock: socket.socket, address: str, first_teid: int = 0x500) -> None:
        self.sock = sock
        self.address = address
        self.teids = itertools.count(first_teid)
        self.seids = itertools.count(0x1000)
        self.cp_seid: dict[int, int] = {}  # UP SEID -> the SMF's SEID
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            if peer is None:  # shut down (close)
                return
            try:
                for header in split_messages(data):
                    msg = m.decode_session_message(data, header)
                    reply = self._answer(msg)
                    if reply is not None:
                        self.sock.sendto(reply, peer)
            except PfcpError:
                continue

    def _created(self, msg: m.SessionMessage) -> tuple[list[bytes], list[int]]:
        created, teids = [], []
        for pdr in msg.pdrs:
            if pdr.f_teid is not None and pdr.f_teid.choose:
                teid = next(self.teids)
                created.append(build.created_pdr(pdr.rule_id, teid, self.address))
                teids.append(teid)
        return created, teids

    def _answer(self, msg: m.SessionMessage) -> bytes | None:
        seq = msg.sequence
        if msg.msg_type == m.SESSION_ESTABLISHMENT_REQUEST and msg.f_seid is not None:
            up_seid = next(self.seids)
            self.cp_seid[up_seid] = msg.f_seid.seid
            created, _ = self._created(msg)
            return build.message(
                m.SESSION_ESTABLISHMENT_RESPONSE,
                msg.f_seid.seid,
                seq,
                build.node_id(self.address),
                build.cause(),
                build.f_seid(up_seid, self.address),
                *created,
            )
        cp_seid = self.cp_seid.get(msg.seid or 0)
        if cp_seid is None:
            return None
        if msg.msg_type == m.SESSION_MODIFICATION_REQUEST:
            created, _ = self._created(msg)
            return build.message(
                m.SESSION_MODIFICATION_RESPONSE, cp_seid, seq, build.cause(), *created
            )
        if msg.msg_type == m.SESSION_DELETION_REQUEST:
            del self.cp_seid[msg.seid or 0]
            return build.message(m.SESSION_DELETION_RESPONSE, cp_seid, seq, build.cause())
        return None

    def close(self) -> None:
        """Stops answering and frees the N4 address: a close alone leaves
        the socket bound while its thread waits in recvfrom; a shutdown
        wakes it (the kernel says ENOTCONN for a UDP socket, and wakes it)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=2)
        self.sock.close()


class PfcpSmf:
    """Sends session requests from `sock` (bound to the SMF's N4 address)
    to the UPF and waits for each answer."""

    def __init__(self, sock: socket.socket, address: str, upf: str, timeout: float = 2.0) -> None:
        self.sock = sock
        self.address = address
        self.upf = (upf, PFCP_PORT)
        self.sequence = itertools.count(1)
        sock.settimeout(timeout)

    def _exchange(self, request: bytes) -> m.SessionMessage:
        self.sock.sendto(request, self.upf)
        data, _ = self.sock.recvfrom(65535)
        (header,) = list(split_messages(data))
        return m.decode_session_message(data, header)

    def establish(
        self,
        cp_seid: int,
        ue: str,
        snssai: tuple[int, int | None] | None,
        dnn: str,
        qfi: int = 1,
        network_instance: str | None = None,
    ) -> Established:
        """A session with an uplink PDR whose TEID the UPF chooses, and a
        downlink PDR for the UE address."""
        body = [
            build.node_id(self.address),
            build.f_seid(cp_seid, self.address),
            build.create_pdr(
                1,
                ies.INTERFACE_ACCESS,
                choose=True,
                ue=ue,
                network_instance=network_instance or dnn,
                qfi=qfi,
                far_id=1,
            ),
            build.create_pdr(
                2, ies.INTERFACE_CORE, ue=ue, network_instance=network_instance or dnn, far_id=2
            ),
            build.create_far(1, ies.INTERFACE_CORE),
            build.create_far(2, ies.INTERFACE_ACCESS),
            build.ie(ies.APN_DNN, build.dns_labels(dnn)),
        ]
        if snssai is not None:
            body.append(build.snssai(*snssai))
        reply = self._exchange(
            build.message(m.SESSION_ESTABLISHMENT_REQUEST, 0, next(self.sequence), *body)
        )
        if reply.cause != ies.CAUSE_ACCEPTED or reply.f_seid is None:
            raise RuntimeError(f"establishment refused: cause {reply.cause}")
        (created,) = reply.created_pdrs
        assert created.f_teid is not None and created.f_teid.teid is not None
        return Established(reply.f_seid.seid, created.f_teid.teid)

    def modify_downlink(self, up_seid: int, gnb_teid: int, gnb: str) -> None:
        """Where the UPF sends downlink: the gNB's TEID (Update FAR)."""
        reply = self._exchange(
            build.message(
                m.SESSION_MODIFICATION_REQUEST,
                up_seid,
                next(self.sequence),
                build.create_far(2, ies.INTERFACE_ACCESS, gnb_teid, gnb, update=True),
            )
        )
        if reply.cause != ies.CAUSE_ACCEPTED:
            raise RuntimeError(f"modification refused: cause {reply.cause}")

    def delete(self, up_seid: int) -> None:
        reply = self._exchange(
            build.message(m.SESSION_DELETION_REQUEST, up_seid, next(self.sequence))
        )
        if reply.cause != ies.CAUSE_ACCEPTED:
            raise RuntimeError(f"deletion refused: cause {reply.cause}")
