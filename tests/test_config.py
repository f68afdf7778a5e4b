"""The agent configuration: interfaces and their reference points, attached
by role and detached completely."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from sauron.bpf.loader import DataPlane
from sauron.config import ConfigError, load_config
from sauron.interfaces import attach_interfaces, resolve_links
from sauron.netns import Attachments, Topology


def test_example_config_loads() -> None:
    config = load_config(REPO / "agent.example.yaml")
    assert [(i.name, i.role) for i in config.interfaces] == [("eth1", "n3"), ("eth0", "n6")]
    assert config.catalog == (REPO / "slices" / "default.yaml").resolve()
    assert config.influx.url == "http://127.0.0.1:8086" and config.influx.bucket == "slices"
    assert [w.name for w in config.control_plane.pfcp] == ["eth2"]
    assert config.control_plane.open5gs_smf[0].url == "http://127.0.0.4:9090"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("interfaces: [{name: eth0, role: n4}]\n", "field interfaces.0.role"),
        ("interfaces: []\n", "field interfaces"),
        ("interfaces: [{name: eth0, role: n3}, {name: eth0, role: n6}]\n", "listed twice"),
        ("interfaces: [{name: eth0, role: n3, colour: red}]\n", "colour"),
        ("interfaces: [{name: averyveryverylongname, role: n3}]\n", "interfaces.0.name"),
        ("interval_s: 0\ninterfaces: [{name: eth0, role: n3}]\n", "interval_s"),
        ("interfaces: [\n", "not valid YAML"),
        ("interfaces: [{name: eth0, role: n3}]\ninflux: {url: 'db:8086'}\n", "field influx.url"),
        ("interfaces: [{name: eth0, role: n3}]\ninflux: {batch_size: 0}\n", "influx.batch_size"),
        (
            "interfaces: [{name: eth0, role: n3}]\ncontrol_plane: {pfcp: [{name: ''}]}\n",
            "field control_plane.pfcp.0.name",
        ),
        (
            "interfaces: [{name: eth0, role: n3}]\n"
            "control_plane: {open5gs_smf: [{url: 'smf:9090'}]}\n",
            "field control_plane.open5gs_smf.0.url",
        ),
        (
            "interfaces: [{name: eth0, role: n3}]\n"
            "control_plane: {open5gs_smf: [{url: 'http://smf:9090', page_size: 500}]}\n",
            "control_plane.open5gs_smf.0.page_size",
        ),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, body: str, fragment: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and fragment in str(err.value)


def _link(ns: str, dev: str) -> str:
    return subprocess.run(
        ["ip", "-n", ns, "-d", "link", "show", "dev", dev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _egress_filters(ns: str, dev: str) -> str:
    return subprocess.run(
        ["tc", "-n", ns, "filter", "show", "dev", dev, "egress"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


@pytest.mark.kernel
@pytest.mark.netns
def test_roles_attach_the_right_programs_and_detach_cleanly(
    recording_dataplane: DataPlane, topology: Topology, tmp_path: Path
) -> None:
    upf, gnb = topology.namespace("upf"), topology.namespace("gnb")
    topology.veth(gnb, "eth0", "192.0.2.1/30", upf, "n3", "192.0.2.2/30")
    topology.veth(gnb, "eth1", "192.0.2.5/30", upf, "n6", "192.0.2.6/30")
    subprocess.run(["ip", "-n", upf, "tuntap", "add", "dev", "ogstun", "mode", "tun"], check=True)
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"interfaces:\n  - {{name: n3, role: n3, netns: {upf}}}\n"
        f"  - {{name: n6, role: n6, netns: {upf}, tc_egress: false}}\n"
        f"  - {{name: ogstun, role: n6, netns: {upf}}}\n"
    )
    config = resolve_links(load_config(path), path)
    attached = Attachments()
    with attached:
        attach_interfaces(recording_dataplane, config.interfaces, attached)
        assert "sauron_n3_ingr" in _link(upf, "n3") and "xdpgeneric" in _link(upf, "n3")
        assert "sauron_n6_ingr" in _link(upf, "n6")
        assert "sauron_n3_egress" in _egress_filters(upf, "n3")
        assert _egress_filters(upf, "n6").strip() == ""
        # the UPF's TUN: bare-IP programs, the sides swapped
        assert "sauron_n6_tun_e" in _link(upf, "ogstun")
        assert "sauron_n6_tun_ingress" in _egress_filters(upf, "ogstun")
    for link in ("n3", "n6", "ogstun"):
        assert "xdp" not in _link(upf, link)
        assert _egress_filters(upf, link).strip() == ""


def test_the_environment_names_the_node(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("node: from-file\ninterfaces: [{name: eth0, role: n3}]\n")
    assert load_config(path, environ={}).node == "from-file"
    assert load_config(path, environ={"SAURON_NODE": "worker-7"}).node == "worker-7"
    assert load_config(path, environ={"SAURON_NODE": ""}).node == "from-file"


def test_influx_paths_are_read_from_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "interfaces: [{name: eth0, role: n3}]\n"
        "influx: {url: 'http://db:8086', spool_dir: spool, token_file: secret/token}\n"
    )
    influx = load_config(path).influx
    assert influx.spool_dir == tmp_path / "spool"
    assert influx.token_file == tmp_path / "secret" / "token"


def test_run_refuses_bad_influx_environment_before_attaching(tmp_path: Path) -> None:
    import os
    import sys

    path = tmp_path / "agent.yaml"
    path.write_text("interfaces: [{name: lo, role: n3}]\n")
    done = subprocess.run(
        [sys.executable, "-m", "sauron", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "SAURON_INFLUX_URL": "influx-without-scheme:8086"},
        timeout=60,
    )
    assert done.returncode == 2
    assert "SAURON_INFLUX_URL" in done.stderr and "field url" in done.stderr
