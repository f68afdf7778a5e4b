"""UDP at known rates, for the tests and benchmarks that need the same
traffic many times over: each UE's datagrams through the tunnel to the DN's
echo, and traffic that is none of the testbed's (another tenant on the
node), between two namespaces of its own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

from sauron.host.netns import Topology
from sauron.testbed.bed import N6_DN, UDP_ECHO_PORT, Testbed

#: the other traffic's two ends, on a veth pair of their own
OTHER_SOURCE, OTHER_SINK = "10.99.0.1", "10.99.0.2"
#: how long the other traffic's sender may take to get going
FLOWING_WITHIN_S = 30.0
#: packets that say it is going (more than the few a link sends of itself
#: when it comes up: IPv6 neighbour discovery, MLD)
FLOWING_PACKETS = 20


def send_paced(
    bed: Testbed, plan: dict[str, float], stop: threading.Event, sent: dict[str, int]
) -> None:
    """UDP to the DN echo from each UE at its rate (packets per second)."""
    socks = {ue: bed.ue_udp_socket(ue) for ue in plan}
    started = time.monotonic()
    sent.update(dict.fromkeys(plan, 0))
    while not stop.is_set():
        elapsed = time.monotonic() - started
        for ue, pps in plan.items():
            due = int(elapsed * pps)
            while sent[ue] < due:
                socks[ue].sendto(sent[ue].to_bytes(4, "big") + bytes(200), (N6_DN, UDP_ECHO_PORT))
                sent[ue] += 1
        time.sleep(0.002)
    for sock in socks.values():
        sock.close()


class OtherTraffic:
    """with OtherTraffic(pps) as other: other.start(); other.pause(); other.resume()

    UDP datagrams at `pps` from one namespace to a port nobody listens on in
    another, over a veth pair of their own: traffic on the node that crosses
    none of Sauron's links. The sender is a process of its own
    (sauron.testbed.datagrams); pausing stops it (SIGSTOP), resuming goes on
    at the same rate without a burst. `sent()` counts the datagrams that
    left, from the sending link's own statistics."""

    def __init__(self, pps: float, size: int = 200) -> None:
        self.pps, self.size = pps, size
        self.topology = Topology()
        self.source = self.sink = ""
        self.sender: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OtherTraffic:
        try:
            self.source = self.topology.namespace("other-a")
            self.sink = self.topology.namespace("other-b")
            self.topology.veth(
                self.source, "oa", f"{OTHER_SOURCE}/30", self.sink, "ob", f"{OTHER_SINK}/30"
            )
        except BaseException:
            self.topology.teardown()
            raise
        return self

    def start(self) -> None:
        """Starts the sender; returns once its datagrams flow."""
        if self.sender is not None:
            raise RuntimeError("the other traffic is already running")
        before = self.sent()
        self.sender = subprocess.Popen(
            [
                *("ip", "netns", "exec", self.source, sys.executable),
                *("-m", "sauron.testbed.datagrams", "--to", OTHER_SINK),
                *("--pps", str(self.pps), "--size", str(self.size)),
            ]
        )
        deadline = time.monotonic() + FLOWING_WITHIN_S
        while self.sent() - before < FLOWING_PACKETS:
            if self.sender.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the other traffic's sender sent nothing in {self.source}")
            time.sleep(0.01)

    def sent(self) -> int:
        """Packets the sending link has sent so far."""
        shown = subprocess.run(
            ["ip", "-n", self.source, "-j", "-s", "link", "show", "dev", "oa"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(json.loads(shown)[0]["stats64"]["tx"]["packets"])

    def _signal(self, sig: signal.Signals) -> None:
        if self.sender is None:
            raise RuntimeError("the other traffic was not started")
        self.sender.send_signal(sig)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.sender is not None:
            self.sender.kill()
            self.sender.wait(timeout=10)
            self.sender = None

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.topology.teardown()
