"""UDP sockets made inside a test namespace, for the PFCP peers of the
control-plane tests (sauron.testbed.pfcp_peers) and their G-PDUs."""

from __future__ import annotations

import socket

from sauron.host.netns import inside
from sauron.pfcp.wire import PFCP_PORT


def udp_socket(ns: str, address: str | None = None) -> socket.socket:
    """A UDP socket in namespace `ns`, bound to address:8805 when given."""
    with inside(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if address is not None:
        sock.bind((address, PFCP_PORT))
    return sock
