"""UDP datagrams at a steady rate to a port nobody listens on, until
killed: the other traffic on the node of the energy tests and benchmarks
(sauron.testbed.paced.OtherTraffic). Nothing but the standard library is
imported, so it sends within a few tens of milliseconds of its start.

    python -m sauron.testbed.datagrams --to 10.99.0.2 --pps 5000
"""

from __future__ import annotations

import argparse
import socket
import time

#: a port nobody listens on: the datagrams end in the receiver's stack
DISCARD_PORT = 9
#: a sender held up for longer than this (stopped, or starved of CPU) goes
#: on at its rate from where it is, with no burst to make up for the pause
MAX_BEHIND_S = 0.1


def send_datagrams(to: str, pps: float, size: int) -> None:
    """Datagrams of `size` bytes to `to`'s discard port at `pps`, paced
    every millisecond, until killed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = bytes(size)
    start, sent = time.monotonic(), 0
    while True:
        due = int((time.monotonic() - start) * pps)
        if due - sent > MAX_BEHIND_S * pps:
            sent = due  # held up: on from here
        while sent < due:
            sock.sendto(payload, (to, DISCARD_PORT))
            sent += 1
        time.sleep(0.001)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="UDP datagrams at a steady rate, until killed")
    parser.add_argument("--to", required=True, help="the receiving address")
    parser.add_argument("--pps", type=float, required=True, help="datagrams a second")
    parser.add_argument("--size", type=int, default=200, help="payload bytes")
    args = parser.parse_args(argv)
    send_datagrams(args.to, args.pps, args.size)


if __name__ == "__main__":
    main()
