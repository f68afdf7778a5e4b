"""Packets the kernel dropped on a node's behalf, which its own counters
never see: datagrams that found the N3 socket's buffer full, and packets
that found the TUN device's queue full. Both are losses inside the node,
so the ground truth must hold them. Read from /proc/thread-self/net, which
shows the network namespace the node runs in."""

from __future__ import annotations

import os
import socket
from pathlib import Path

#: the calling thread's namespace (a thread may have entered another one)
PROC_NET = Path("/proc/thread-self/net")


def socket_drops(sock: socket.socket, proc_net: Path = PROC_NET) -> int | None:
    """The `drops` column of the socket's row in udp/udp6, found by inode."""
    inode = os.fstat(sock.fileno()).st_ino
    for table in ("udp", "udp6"):
        path = proc_net / table
        if not path.exists():
            continue
        # rows end "... inode ref pointer drops"; the header's column names
        # do not split like the rows do, so count from the right
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 4 and int(fields[-4]) == inode:
                return int(fields[-1])
    return None


def interface_drops(name: str, proc_net: Path = PROC_NET) -> dict[str, int] | None:
    """Receive and transmit drops of one interface, from net/dev."""
    for line in (proc_net / "dev").read_text().splitlines()[2:]:
        ifname, _, counters = line.partition(":")
        if ifname.strip() != name:
            continue
        fields = [int(v) for v in counters.split()]
        return {"rx_dropped": fields[3], "tx_dropped": fields[11]}
    return None
