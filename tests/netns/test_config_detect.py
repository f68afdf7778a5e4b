"""`sauron config init --detect` on a host laid out like an Open5GS one: a
named namespace holding the UPF, its N3 address on a veth (the gNB's end in
a second namespace), its N4 address on the loopback (127.0.0.7, Open5GS's
default), its TUN device ogstun holding the UE pool's gateway, and the
files in Open5GS 2.7's format. The configuration it writes is run as it is
(`sauron run`): the agent attaches to the detected links and turns ready.
`sauron config check` passes on it and names the field of a wrong link.

Open5GS itself is not installed here: `open5gs-upfd` and `open5gs-smfd`
are stand-ins, a program of a few lines compiled under those names that
waits for a signal, started as Open5GS is (`-c FILE`) in the UPF's
namespace and in the host's. What is detected of them is what the agent
reads of any process: its name, command line and namespace."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_process import REPO, start_agent, stop_agent
from holders import ingress_attached
from hooks import tcx_program_ids

from sauron.agent.config import load_config
from sauron.catalog import load_catalog

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

PREFIX = f"dt5gs{os.getpid() % 10000}"
UPF_NS = f"{PREFIX}-upf"
RAN_NS = f"{PREFIX}-ran"
N3_LINK = "n3-dt"  # the UPF's end of the veth
GNB_LINK = "gnb-dt"
WAIT = "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n"

UPF_YAML = """\
logger:
  file:
    path: /var/log/open5gs/upf.log
global:
  max:
    ue: 1024
upf:
  pfcp:
    server:
      - address: 127.0.0.7
  gtpu:
    server:
      - address: 10.0.3.2
  session:
    - subnet: 10.45.0.0/16
      gateway: 10.45.0.1
      dnn: internet
  metrics:
    server:
      - address: 127.0.0.7
        port: 9090
"""

SMF_YAML = """\
smf:
  pfcp:
    server:
      - address: 127.0.0.4
    client:
      upf:
        - address: 127.0.0.7
  metrics:
    server:
      - address: 127.0.0.4
        port: 9199
  session:
    - subnet: 10.45.0.0/16
      gateway: 10.45.0.1
      dnn: internet
  info:
    - s_nssai:
        - sst: 1
          sd: 000001
          dnn:
            - internet
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Open5gsHost:
    upf_yaml: Path
    smf_yaml: Path
    upf: subprocess.Popen[bytes]
    smf: subprocess.Popen[bytes]


@contextmanager
def open5gs_host(folder: Path) -> Iterator[Open5gsHost]:
    """The namespaces, links and stand-in processes; all removed on exit."""
    source = folder / "wait.c"
    source.write_text(WAIT)
    upfd, smfd = folder / "open5gs-upfd", folder / "open5gs-smfd"
    subprocess.run(["cc", "-O1", "-o", str(upfd), str(source)], check=True)
    shutil.copy(upfd, smfd)
    upf_yaml, smf_yaml = folder / "upf.yaml", folder / "smf.yaml"
    upf_yaml.write_text(UPF_YAML)
    smf_yaml.write_text(SMF_YAML)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for ns in (UPF_NS, RAN_NS):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip(
            "-n",
            UPF_NS,
            "link",
            "add",
            N3_LINK,
            "type",
            "veth",
            "peer",
            "name",
            GNB_LINK,
            "netns",
            RAN_NS,
        )
        ip("-n", UPF_NS, "addr", "add", "10.0.3.2/24", "dev", N3_LINK)
        ip("-n", RAN_NS, "addr", "add", "10.0.3.1/24", "dev", GNB_LINK)
        ip("-n", UPF_NS, "tuntap", "add", "name", "ogstun", "mode", "tun")
        ip("-n", UPF_NS, "addr", "add", "10.45.0.1/16", "dev", "ogstun")
        for ns, link in ((UPF_NS, N3_LINK), (RAN_NS, GNB_LINK), (UPF_NS, "ogstun")):
            ip("-n", ns, "link", "set", link, "up")
        # as Open5GS's packages start them: the UPF in its namespace
        upf = subprocess.Popen(["ip", "netns", "exec", UPF_NS, str(upfd), "-c", str(upf_yaml)])
        started.append(upf)
        smf = subprocess.Popen([str(smfd), "-c", str(smf_yaml)])
        started.append(smf)
        for proc, name in ((upf, "open5gs-upfd"), (smf, "open5gs-smfd")):
            deadline = time.monotonic() + 5
            while Path(f"/proc/{proc.pid}/comm").read_text().strip() != name:
                assert time.monotonic() < deadline, f"{name} did not start"
                time.sleep(0.02)
        yield Open5gsHost(upf_yaml, smf_yaml, upf, smf)
    finally:
        for proc in started:
            proc.kill()
            proc.wait()
        for ns in (UPF_NS, RAN_NS):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def sauron(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauron", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def get(url: str, route: str) -> tuple[int, dict[str, object]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", route)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_detect_writes_a_configuration_the_agent_runs(tmp_path: Path) -> None:
    agent_yaml, slices_yaml = tmp_path / "agent.yaml", tmp_path / "slices.yaml"
    state_before = set(os.listdir("/run/sauron")) if os.path.isdir("/run/sauron") else set()
    with open5gs_host(tmp_path) as host:
        detected = sauron(
            "config", "init", "--detect", "--output", str(agent_yaml),
            "--catalog-output", str(slices_yaml), "--port", "0",
        )  # fmt: skip
        assert detected.returncode == 0, detected.stderr
        said = detected.stderr
        assert f"found: open5gs-upfd (pid {host.upf.pid}) in namespace {UPF_NS}" in said
        assert f"its configuration {host.upf_yaml} from its command line (-c)" in said
        assert f"found: open5gs-smfd (pid {host.smf.pid}) in the host's namespace" in said

        written = agent_yaml.read_text()
        ns_said = f"namespace {UPF_NS} (/var/run/netns/{UPF_NS})"
        assert (
            f"# N3: 10.0.3.2 on {N3_LINK} in {ns_said}, from {host.upf_yaml} "
            "upf.gtpu.server[0].address (line 13)\n" in written
        )
        assert (
            f"# N4: 127.0.0.7 on lo (the loopback: the peer runs on this host) in {ns_said}, "
            f"from {host.upf_yaml} upf.pfcp.server[0].address (line 10)\n" in written
        )
        assert "# N6: ogstun, a tun device, holding 10.45.0.1 in" in written
        config = load_config(agent_yaml)
        assert [(i.name, i.role, i.netns, i.link) for i in config.interfaces] == [
            (N3_LINK, "n3", UPF_NS, "auto"),
            ("ogstun", "n6", UPF_NS, "upf_device"),
        ]
        assert [(w.name, w.netns) for w in config.control_plane.pfcp] == [("lo", UPF_NS)]
        assert [f.url for f in config.control_plane.open5gs_smf] == ["http://127.0.0.4:9199"]
        assert [w.name for w in config.energy.watch] == ["open5gs-upfd", "open5gs-smfd"]
        assert config.catalog == slices_yaml
        catalog = load_catalog(slices_yaml)
        assert [
            (s.name, str(s.spec.snssai), [str(n) for n in s.spec.ue_subnets], s.spec.dnns)
            for s in catalog.slices
        ] == [("internet", "1-000001", ["10.45.0.0/16"], ["internet"])]
        assert f"# {host.upf_yaml} upf.session[0].subnet (line 15) (DNN internet)\n" in (
            slices_yaml.read_text()
        )

        agent, url = start_agent(agent_yaml)
        try:
            deadline = time.monotonic() + 30
            status, body = get(url, "/readyz")
            while status != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
                status, body = get(url, "/readyz")
            assert status == 200, body
            upf_pid = host.upf.pid
            assert ingress_attached(upf_pid, N3_LINK)
            assert ingress_attached(upf_pid, "ogstun")
            for link in (N3_LINK, "ogstun"):
                assert tcx_program_ids(UPF_NS, link, "egress"), link
        finally:
            out = stop_agent(agent)
        assert agent.returncode == 0, out
        for link in (N3_LINK, "ogstun"):
            assert not ingress_attached(host.upf.pid, link), out
            assert not tcx_program_ids(UPF_NS, link, "egress"), out

        checked = sauron("config", "check", str(agent_yaml))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"ok: interface ogstun (n6) in namespace {UPF_NS}: link upf_device" in checked.stdout

        wrong = tmp_path / "wrong.yaml"
        wrong.write_text(written.replace("- name: ogstun\n", "- name: ogstun9\n"))
        refused = sauron("config", "check", str(wrong))
        assert refused.returncode == 1
        line = line_of(wrong.read_text(), "name: ogstun9")
        assert (
            f"{wrong}: line {line}: field interfaces.1.name: no link 'ogstun9' in namespace "
            f"{UPF_NS}" in refused.stderr
        ), refused.stderr
        assert "did you mean 'ogstun'?" in refused.stderr
        assert "1 problem(s) to fix before sauron run" in refused.stderr
    state_after = set(os.listdir("/run/sauron")) if os.path.isdir("/run/sauron") else set()
    assert state_after <= state_before, state_after - state_before
