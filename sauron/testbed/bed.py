"""Building and running the testbed: gNB, UPF and DN namespaces, N3 and N6
veth links addressed like a small Open5GS install, the three node processes,
and the ground truth they leave. Teardown always runs and leaves nothing."""

from __future__ import annotations

import ipaddress
import json
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sauron.agent.config import InterfaceConfig
from sauron.bpf.links import Links
from sauron.catalog import Catalog
from sauron.host.netns import Topology, inside
from sauron.testbed.sessions import Impairment, SessionsFile

N3_GNB, N3_UPF = "192.0.2.1", "192.0.2.2"
N6_UPF, N6_DN = "198.51.100.1", "198.51.100.2"
N3_PREFIX, N6_PREFIX = 24, 24
#: the core's own networks, as the security checks protect them: N3 (the
#: gNB's and the UPFs' addresses) and the UPF's N6 gateway (not all of N6:
#: the DN the UEs reach is there too)
CORE_NETWORKS = (f"192.0.2.0/{N3_PREFIX}", f"{N6_UPF}/32")
GNB_MAC, UPF_N3_MAC = "02:00:00:00:03:01", "02:00:00:00:03:02"
UPF_N6_MAC, DN_MAC = "02:00:00:00:06:02", "02:00:00:00:06:01"
UDP_ECHO_PORT, TCP_SINK_PORT, TCP_SOURCE_PORT = 9000, 9001, 9002
READY_TIMEOUT_S = 20.0


class TestbedError(RuntimeError):
    __test__ = False  # not a pytest class, despite the name


class Testbed:
    """with Testbed(catalog, sessions, workdir) as bed: ... bed.stop() -> truth"""

    __test__ = False  # not a pytest class, despite the name

    def __init__(
        self,
        catalog: Catalog,
        sessions: SessionsFile,
        workdir: Path,
        echo_interval: float = 1.0,
        before_nodes: Callable[[Testbed], None] | None = None,
        nat: bool = False,
        upf_per_slice: bool = False,
    ) -> None:
        """before_nodes runs once the links exist and before any node sends:
        the place to attach the agent, so that it sees every packet.

        upf_per_slice: one UPF process per slice (the usual Open5GS layout),
        each with its own N3 address, TUN device and process name
        (`upf-<slice>`), instead of one UPF for every slice."""
        self.upf_per_slice = upf_per_slice
        self.before_nodes = before_nodes
        #: masquerade UE traffic behind the UPF's N6 address, as a typical Open5GS host does
        self.nat = nat
        self.catalog = catalog
        self.sessions = sessions
        self.workdir = workdir
        self.echo_interval = echo_interval
        self.topology = Topology()
        #: the agent's programs attached in the testbed (before_nodes), detached
        #: before the namespaces go
        self.links = Links()
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.gnb = self.upf = self.dn = ""

    # ---- building -------------------------------------------------------
    def _sysctl(self, ns: str, *settings: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", *settings], check=True)

    def ue_pools(self, slice_name: str | None = None) -> list[str]:
        return [
            str(n)
            for s in self.catalog.slices
            if slice_name is None or s.name == slice_name
            for n in s.spec.ue_subnets
            if n.version == 4
        ]

    def upf_addresses(self) -> dict[str, str]:
        """slice -> N3 address of its UPF, when there is one UPF per slice."""
        if not self.upf_per_slice:
            return {}
        served = sorted({s.slice for s in self.sessions.sessions})
        first = ipaddress.IPv4Address(N3_UPF)
        return {name: str(first + 1 + i) for i, name in enumerate(served)}

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        topo = self.topology
        self.gnb, self.upf, self.dn = (
            topo.namespace("gnb"),
            topo.namespace("upf"),
            topo.namespace("dn"),
        )
        for ns in (self.gnb, self.upf, self.dn):
            # IPv4 only, so the links carry nothing but the traffic under test
            self._sysctl(
                ns,
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            )
        self._sysctl(self.upf, "net.ipv4.ip_forward=1")
        topo.veth(
            self.gnb,
            "n3",
            f"{N3_GNB}/{N3_PREFIX}",
            self.upf,
            "n3",
            f"{N3_UPF}/{N3_PREFIX}",
            GNB_MAC,
            UPF_N3_MAC,
        )
        topo.veth(
            self.upf,
            "n6",
            f"{N6_UPF}/{N6_PREFIX}",
            self.dn,
            "eth0",
            f"{N6_DN}/{N6_PREFIX}",
            UPF_N6_MAC,
            DN_MAC,
        )
        if self.nat:
            rules = (
                "table ip sauron_nat {\n"
                "  chain post {\n"
                "    type nat hook postrouting priority 100;\n"
                '    oifname "n6" masquerade\n'
                "  }\n"
                "}\n"
            )
            subprocess.run(
                ["ip", "netns", "exec", self.upf, "nft", "-f", "-"],
                input=rules,
                text=True,
                check=True,
            )
        else:
            for pool in self.ue_pools():
                topo.route(self.dn, pool, N6_UPF)
        # static neighbours: no ARP on the links while traffic is counted
        for ns, ip, mac, dev in (
            (self.gnb, N3_UPF, UPF_N3_MAC, "n3"),
            (self.upf, N3_GNB, GNB_MAC, "n3"),
            (self.upf, N6_DN, DN_MAC, "n6"),
            (self.dn, N6_UPF, UPF_N6_MAC, "eth0"),
        ):
            subprocess.run(
                [
                    "ip",
                    "-n",
                    ns,
                    "neigh",
                    "replace",
                    ip,
                    "lladdr",
                    mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ],
                check=True,
            )
        upfs = self.upf_addresses()
        for address in upfs.values():
            subprocess.run(
                ["ip", "-n", self.upf, "addr", "add", f"{address}/{N3_PREFIX}", "dev", "n3"],
                check=True,
            )
            subprocess.run(
                [
                    "ip",
                    "-n",
                    self.gnb,
                    "neigh",
                    "replace",
                    address,
                    "lladdr",
                    UPF_N3_MAC,
                    "dev",
                    "n3",
                    "nud",
                    "permanent",
                ],
                check=True,
            )
        if self.before_nodes is not None:
            self.before_nodes(self)
        sessions_path = self.workdir / "sessions.json"
        if upfs:
            routed = [
                s.model_copy(update={"upf_n3": ipaddress.IPv4Address(upfs[s.slice])})
                for s in self.sessions.sessions
            ]
            self.sessions = self.sessions.model_copy(update={"sessions": routed})
        self.sessions.write(sessions_path)
        upf_args = [
            "sauron.testbed.upf",
            "--sessions",
            str(sessions_path),
            "--gnb",
            N3_GNB,
            "--echo-interval",
            str(self.echo_interval),
        ]
        if not upfs:
            pools = [a for p in self.ue_pools() for a in ("--ue-pool", p)]
            self._spawn("upf", self.upf, [*upf_args, "--n3", N3_UPF, "--title", "ref-upf", *pools])
        for i, (name, address) in enumerate(upfs.items()):
            pools = [a for p in self.ue_pools(name) for a in ("--ue-pool", p)]
            self._spawn(
                f"upf-{name}",
                self.upf,
                [
                    *upf_args,
                    "--n3",
                    address,
                    "--slice",
                    name,
                    "--tun",
                    f"ogstun{i}",
                    "--title",
                    f"upf-{name}"[:15],
                    *pools,
                ],
            )
        self._spawn(
            "dn",
            self.dn,
            [
                "sauron.testbed.dn",
                "--udp-port",
                str(UDP_ECHO_PORT),
                "--tcp-port",
                str(TCP_SINK_PORT),
                "--tcp-source-port",
                str(TCP_SOURCE_PORT),
            ],
        )
        self._spawn(
            "gnb",
            self.gnb,
            [
                "sauron.testbed.gnb",
                "--sessions",
                str(sessions_path),
                "--n3",
                N3_GNB,
                "--upf",
                N3_UPF,
                "--dn-route",
                f"{N6_DN}/32",
                "--echo-interval",
                str(self.echo_interval),
            ],
        )

    def _spawn(self, name: str, ns: str, module_args: list[str]) -> None:
        truth = self.workdir / f"{name}.truth.json"
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", *module_args, "--truth", str(truth)]
        with (self.workdir / f"{name}.log").open("w") as log:  # the child keeps its own copy
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        self.processes[name] = proc
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
        line = proc.stdout.readline().strip() if ready else ""
        if line != "ready":
            tail = (self.workdir / f"{name}.log").read_text()[-2000:]
            raise TestbedError(f"{name} did not start: {line or 'no answer'}\n{tail}")

    # ---- using ------------------------------------------------------------
    def interfaces(self) -> list[InterfaceConfig]:
        """The UPF's N3 and N6 links, for the agent."""
        return [
            InterfaceConfig(name="n3", role="n3", netns=self.upf),
            InterfaceConfig(name="n6", role="n6", netns=self.upf),
        ]

    def ue_udp_socket(self, ue_ip: str) -> socket.socket:
        """A kernel UDP socket of a UE: it sends through the tunnel."""
        with inside(self.gnb):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((ue_ip, 0))
        return sock

    def ue_tcp_connection(
        self,
        ue_ip: str,
        port: int = TCP_SINK_PORT,
        timeout: float = 10.0,
        receive_buffer: int | None = None,
    ) -> socket.socket:
        """A UE's TCP connection to the DN: the sink (upload) or the source
        (TCP_SOURCE_PORT, download). receive_buffer: set before connecting,
        so that the window the UE offers stays that small."""
        with inside(self.gnb):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            if receive_buffer is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.bind((ue_ip, 0))
        sock.connect((N6_DN, port))
        return sock

    def upf_pids(self) -> dict[str, int]:
        """UPF process name -> pid ("upf", or "upf-<slice>" for each slice)."""
        return {n: p.pid for n, p in self.processes.items() if n == "upf" or n.startswith("upf-")}

    def set_impairments(self, impairments: dict[str, Impairment]) -> None:
        """Changes the UPF's per-slice impairments while it runs."""
        self.sessions = self.sessions.model_copy(update={"impairments": impairments})
        self.sessions.write(self.workdir / "sessions.json")
        for name, proc in self.processes.items():
            if name == "upf" or name.startswith("upf-"):
                proc.send_signal(signal.SIGHUP)

    def set_n3_receive_buffer(self, nbytes: int | None) -> None:
        """Changes the UPF's N3 socket receive buffer while it runs (None:
        back to the default, 4 MiB)."""
        self.sessions = self.sessions.model_copy(update={"n3_receive_buffer": nbytes})
        self.sessions.write(self.workdir / "sessions.json")
        for name, proc in self.processes.items():
            if name == "upf" or name.startswith("upf-"):
                proc.send_signal(signal.SIGHUP)

    def truth_so_far(self, name: str, within_s: float = 5.0) -> dict[str, Any]:
        """The ground truth node `name` ("upf", "gnb", ...) has kept so far,
        while it runs on (it writes it on SIGUSR1)."""
        path = self.workdir / f"{name}.truth.json"
        path.unlink(missing_ok=True)
        self.processes[name].send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                return dict(json.loads(path.read_text()))
            except (OSError, ValueError):
                time.sleep(0.01)  # not written yet, or half written
        raise TestbedError(f"{name} wrote no ground truth within {within_s} s")

    # ---- stopping -----------------------------------------------------------
    def stop(self) -> dict[str, Any]:
        """Stops the nodes; returns (and writes) the combined ground truth."""
        truth: dict[str, Any] = {"sessions": json.loads(self.sessions.model_dump_json())}
        upfs = [n for n in self.processes if n == "upf" or n.startswith("upf-")]
        for name in ("gnb", *upfs, "dn"):
            proc = self.processes.pop(name, None)
            if proc is None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            path = self.workdir / f"{name}.truth.json"
            if not path.exists():
                raise TestbedError(f"{name} wrote no ground truth (exit {proc.returncode})")
            truth[name] = json.loads(path.read_text())
        (self.workdir / "groundtruth.json").write_text(json.dumps(truth, indent=2, sort_keys=True))
        return truth

    def teardown(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.processes.clear()
        self.links.detach_all()
        self.topology.teardown()

    def __enter__(self) -> Testbed:
        try:
            self.start()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
