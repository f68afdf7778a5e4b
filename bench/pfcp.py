"""`make bench-pfcp`: how many PFCP session events the learner keeps up
with, side by side in one run, on the same messages:

1. scapy's PFCP layer dissecting each message (a reference decoder);
2. Sauron's decoder alone (header, then the session IEs it uses);
3. the learner with its session table, no data path;
4. the learner writing the classification maps of a real data plane
   (bcc map updates, rules generation bumped once per datagram batch), as
   the agent runs it.

Each of SESSIONS sessions goes through establishment (CHOOSE F-TEID),
modification (the gNB's tunnel) and deletion, requests and responses:
six messages, three session events. CPU time of this process."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scapy.contrib.pfcp import PFCP

from sauron.catalog import load_catalog
from sauron.control.pfcp_learner import PfcpLearner
from sauron.control.registry import SessionRegistry
from sauron.control.rules import LearnedRules
from sauron.pfcp import build, ies
from sauron.pfcp import messages as m
from sauron.pfcp.wire import split_messages

SESSIONS = 5_000
SMF, UPF, GNB = "10.0.0.1", "10.0.0.2", "10.0.1.1"
#: datagrams between two flushes of the rules (the watch reads up to 256)
BATCH = 256


def exchange(n: int) -> list[tuple[bytes, str, str]]:
    """One session's six messages, as (payload, from, to)."""
    cp, up, teid = 0x10000 + n, 0x20000 + n, 0x30000 + n
    ue = f"10.46.{n // 250}.{n % 250 + 1}"
    seq = 3 * n
    request = build.message(
        m.SESSION_ESTABLISHMENT_REQUEST,
        0,
        seq,
        build.node_id(SMF),
        build.f_seid(cp, SMF),
        build.create_pdr(
            1, ies.INTERFACE_ACCESS, choose=True, ue=ue, network_instance="urllc", qfi=1
        ),
        build.create_pdr(2, ies.INTERFACE_CORE, ue=ue, network_instance="urllc", far_id=2),
        build.create_far(1, ies.INTERFACE_CORE),
        build.create_far(2, ies.INTERFACE_ACCESS),
        build.ie(ies.APN_DNN, build.dns_labels("urllc")),
        build.snssai(2, 1),
    )
    response = build.message(
        m.SESSION_ESTABLISHMENT_RESPONSE,
        cp,
        seq,
        build.node_id(UPF),
        build.cause(),
        build.f_seid(up, UPF),
        build.created_pdr(1, teid, UPF),
    )
    modify = build.message(
        m.SESSION_MODIFICATION_REQUEST,
        up,
        seq + 1,
        build.create_far(2, ies.INTERFACE_ACCESS, 0x40000 + n, GNB, update=True),
    )
    modified = build.message(m.SESSION_MODIFICATION_RESPONSE, cp, seq + 1, build.cause())
    delete = build.message(m.SESSION_DELETION_REQUEST, up, seq + 2)
    deleted = build.message(m.SESSION_DELETION_RESPONSE, cp, seq + 2, build.cause())
    return [
        (request, SMF, UPF),
        (response, UPF, SMF),
        (modify, SMF, UPF),
        (modified, UPF, SMF),
        (delete, SMF, UPF),
        (deleted, UPF, SMF),
    ]


def workload() -> list[tuple[bytes, str, str]]:
    """Sessions overlap as they would: all established, then all modified,
    then all deleted, so the table holds SESSIONS at its peak."""
    per = [exchange(n) for n in range(SESSIONS)]
    return [msg for phase in range(3) for one in per for msg in one[2 * phase : 2 * phase + 2]]


def timed(run: Callable[[], None]) -> float:
    started = time.process_time()
    run()
    return time.process_time() - started


def scapy_decode(msgs: list[tuple[bytes, str, str]]) -> None:
    for payload, _, _ in msgs:
        PFCP(payload)


def own_decode(msgs: list[tuple[bytes, str, str]]) -> None:
    for payload, _, _ in msgs:
        for header in split_messages(payload):
            m.decode_session_message(payload, header)


def learn(msgs: list[tuple[bytes, str, str]], dataplane: Any | None) -> dict[str, int]:
    catalog = load_catalog()
    registry = SessionRegistry(catalog, LearnedRules(dataplane, catalog) if dataplane else None)
    learner = PfcpLearner(registry.upsert, registry.remove)
    for i, (payload, src, dst) in enumerate(msgs):
        learner.feed(payload, src, dst)
        if i % BATCH == BATCH - 1:
            registry.flush()
    registry.flush()
    assert not learner.rejects and sum(learner.applied.values()) == len(msgs)
    assert registry.events["learned"] == SESSIONS == registry.events["removed"]
    return dict(registry.rules.counts) if registry.rules else {}


def main() -> None:
    machine = f"{platform.node()} {platform.machine()} {platform.release()}, {os.cpu_count()} CPUs"
    msgs = workload()
    events = 3 * SESSIONS
    print(f"{SESSIONS} sessions, {len(msgs)} messages, {events} session events; {machine}")
    from sauron.bpf.loader import DataPlane

    with DataPlane() as dp:
        seconds = {
            "scapy_decode": timed(lambda: scapy_decode(msgs)),
            "decode": timed(lambda: own_decode(msgs)),
            "learn": timed(lambda: learn(msgs, None)),
        }
        rule_counts: dict[str, int] = {}

        def with_maps() -> None:
            rule_counts.update(learn(msgs, dp))

        seconds["learn_and_maps"] = timed(with_maps)
    assert rule_counts["teid_written"] == SESSIONS and rule_counts["ue_removed"] == SESSIONS
    results: dict[str, Any] = {}
    base = seconds["decode"]
    print(f"{'':<16}{'messages/s':>12}{'events/s':>10}{'us/message':>12}{'x decode':>10}")
    for name, s in seconds.items():
        results[name] = {
            "messages_per_s": round(len(msgs) / s),
            "session_events_per_s": round(events / s),
            "cpu_us_per_message": round(s / len(msgs) * 1e6, 2),
            "x_decode": round(s / base, 2),
        }
        r = results[name]
        print(
            f"{name:<16}{r['messages_per_s']:>12}{r['session_events_per_s']:>10}"
            f"{r['cpu_us_per_message']:>12.2f}{r['x_decode']:>10.2f}"
        )
    out = Path(__file__).resolve().parent / "pfcp_results.json"
    out.write_text(json.dumps({"machine": machine, "sessions": SESSIONS, **results}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
