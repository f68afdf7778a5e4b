"""The agent attaches to interfaces inside other network namespaces, named
the ways a deployment knows them: by pid, by process name, by namespace
file and by container. Each namespace here belongs to a holder process
(`unshare --net`), unnamed, as a container's is. No container engine runs on
this machine: for `container:` a stand-in answers the one request the agent
makes of the engine's API (GET /containers/NAME/json) on a Unix socket."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from agent_process import REPO, start_agent
from frames import gtpu_raw, inner_v4, outer
from holders import holder, ingress_attached, link_into

from sauron.agent.config import ConfigError, load_config, resolve_namespaces
from sauron.commands.client import SauronClient
from sauron.host.namespace_ref import (
    NamespaceError,
    check_network_namespace,
    container_pid,
    resolve,
)
from sauron.host.netns import Topology, inside

HOLDER_NAME = "sauron-upf-hold"  # 15 characters: a whole comm


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers GET /containers/NAME/json like a container engine for the
    containers it is given ({name: pid})."""

    daemon_threads = True

    def __init__(self, path: Path, containers: dict[str, int]) -> None:
        self.containers = containers
        super().__init__(str(path), _EngineHandler)


class _EngineHandler(BaseHTTPRequestHandler):
    server: FakeEngine

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        pid = (
            self.server.containers.get(parts[1])
            if len(parts) == 3 and parts[0] == "containers"
            else None
        )
        if pid is None:
            body, status = b'{"message":"No such container"}', 404
        else:
            body, status = json.dumps({"State": {"Pid": pid, "Running": True}}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def fake_engine(path: Path, containers: dict[str, int]) -> Iterator[Path]:
    server = FakeEngine(path, containers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()


def send(src: str, ifname: str, frame: bytes, count: int) -> None:
    with inside(src):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind((ifname, 0))
        for _ in range(count):
            sock.send(frame)


def uplink_frame(teid: int, ue: str) -> bytes:
    return outer(gtpu_raw(teid, payload=inner_v4(src=ue, size=40)))


def test_a_reference_of_the_wrong_form_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    for bad, why in (
        ("pid:twelve", "pid must be a positive number"),
        ("process:a-name-far-too-long", "1 to 15 characters"),
        ("vm:upf", "unknown kind 'vm'"),
        ("up f", "not a namespace name"),
    ):
        path.write_text(
            yaml.safe_dump({"interfaces": [{"name": "n3", "role": "n3", "netns": bad}]})
        )
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert "field interfaces.0.netns" in str(err.value) and why in str(err.value), str(
            err.value
        )


@pytest.mark.netns
def test_references_resolve_or_say_why_not(tmp_path: Path) -> None:
    with holder() as pid:
        own = f"/proc/{pid}/ns/net"
        assert resolve(f"pid:{pid}") == own
        assert resolve(own) == own
        with fake_engine(tmp_path / "engine.sock", {"upf-embb": pid}) as sock:
            assert container_pid("upf-embb", sock) == pid
            assert resolve("container:upf-embb", sock) == own
            with pytest.raises(NamespaceError, match="no such container"):
                resolve("container:upf-nope", sock)
    with pytest.raises(NamespaceError, match="no container engine at"):
        resolve("container:upf-embb", tmp_path / "nothing.sock")
    with pytest.raises(NamespaceError, match="no namespace at"):
        resolve("pid:999999999")
    with pytest.raises(NamespaceError, match="no process of that name"):
        resolve("process:no-such-procs")
    with (
        holder() as a,
        holder() as b,
        pytest.raises(NamespaceError, match=f"2 processes of that name .*{min(a, b)}"),
    ):
        resolve("process:sleep", proc=_only(tmp_path / "proc", a, b))


def test_a_fifo_or_a_device_is_refused_unopened(tmp_path: Path) -> None:
    """A FIFO's open would wait for a writer forever, a device's open acts
    (a watchdog arms): neither is opened to ask the kernel what it is."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NamespaceError, match="is not a namespace file"):
        check_network_namespace(str(fifo), fifo)
    with pytest.raises(NamespaceError, match="is not a namespace file"):
        check_network_namespace("/dev/null", Path("/dev/null"))


def _only(root: Path, *pids: int) -> Path:
    """A /proc with just these processes (the host may run other sleeps)."""
    for pid in pids:
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "comm").write_text(Path(f"/proc/{pid}/comm").read_text())
    return root


@pytest.mark.kernel
@pytest.mark.netns
def test_agent_attaches_in_namespaces_named_by_pid_process_path_and_container(
    tmp_path: Path, topology: Topology
) -> None:
    hold_exe = tmp_path / HOLDER_NAME
    shutil.copy("/bin/sleep", hold_exe)
    src = topology.namespace("src")
    with (
        holder() as by_pid,
        holder(str(hold_exe)) as by_process,
        holder() as by_path,
        holder() as by_container,
        fake_engine(tmp_path / "engine.sock", {"upf-urllc": by_container}) as engine,
    ):
        # every UPF-side end is called n3: a namespace and a name make an interface
        for i, pid in enumerate((by_pid, by_process, by_path, by_container)):
            link_into(topology, src, f"s{i}", pid, "n3")
        config = tmp_path / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "catalog": str(REPO / "slices" / "default.yaml"),
                    "interval_s": 0.5,
                    "container_socket": str(engine),
                    "interfaces": [
                        {"name": "n3", "role": "n3", "netns": f"pid:{by_pid}"},
                        {"name": "n3", "role": "n3", "netns": f"process:{HOLDER_NAME}"},
                        {"name": "n3", "role": "n3", "netns": f"/proc/{by_path}/ns/net"},
                        {"name": "n3", "role": "n3", "netns": "container:upf-urllc"},
                    ],
                    "service": {"host": "127.0.0.1", "port": 0},
                    "energy": {"enabled": False},
                }
            )
        )
        agent, url = start_agent(config)
        try:
            holders = (by_pid, by_process, by_path, by_container)
            assert all(ingress_attached(pid, "n3") for pid in holders)
            # one slice per way in (embb twice), distinct counts
            send(src, "s0", uplink_frame(0x10001, "10.45.0.1"), 5)
            send(src, "s1", uplink_frame(0x20001, "10.46.0.1"), 7)
            send(src, "s2", uplink_frame(0x10002, "10.45.0.2"), 11)
            send(src, "s3", uplink_frame(0x30001, "10.47.0.1"), 9)
            counted = asyncio.run(uplink_totals(url, {"embb": 16, "urllc": 7, "mmtc": 9}))
        finally:
            agent.send_signal(signal.SIGTERM)
            out, _ = agent.communicate(timeout=20)
        assert agent.returncode == 0, out
        assert counted == {"embb": 16, "urllc": 7, "mmtc": 9}, out
        assert not any(ingress_attached(pid, "n3") for pid in holders)


async def uplink_totals(url: str, expected: dict[str, int]) -> dict[str, int]:
    """Uplink packets into the UPF per slice, once they reach what was sent
    (or 15 s pass)."""
    totals: dict[str, int] = {}
    async with SauronClient(url) as api:
        for _ in range(30):
            await asyncio.sleep(0.5)
            for name in expected:
                series = await api.kpis(name)
                totals[name] = sum(p.uplink.packets_in for p in series.points)
            if totals == expected:
                break
    return totals


@pytest.mark.netns
def test_one_interface_named_twice_through_two_references_is_refused(tmp_path: Path) -> None:
    with holder() as pid:
        path = tmp_path / "agent.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "interfaces": [
                        {"name": "n3", "role": "n3", "netns": f"pid:{pid}"},
                        {"name": "n3", "role": "n3", "netns": f"/proc/{pid}/ns/net"},
                    ]
                }
            )
        )
        with pytest.raises(
            ConfigError, match=r"field interfaces.1: 'n3' in the namespace of interfaces.0"
        ):
            resolve_namespaces(load_config(path), path)
