"""UDP from testbed UEs at known rates, for tests that need the same
traffic twice or traffic spread over many intervals."""

from __future__ import annotations

import threading
import time

from sauron.testbed.bed import N6_DN, UDP_ECHO_PORT, Testbed


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
