"""The agent configuration: interfaces and their reference points, attached
by role and detached completely."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import REPO
from hooks import tcx_programs

from sauron.agent.config import AgentConfig, ConfigError, load_config
from sauron.agent.interfaces import attach_interfaces, resolve_links
from sauron.bpf import ingress_hooks
from sauron.bpf.links import Links
from sauron.bpf.loader import DataPlane
from sauron.host.netns import Topology


def test_example_config_loads() -> None:
    config = load_config(REPO / "agent.example.yaml")
    assert [(i.name, i.role) for i in config.interfaces] == [("eth1", "n3"), ("eth0", "n6")]
    assert config.catalog == (REPO / "slices" / "default.yaml").resolve()
    assert config.influx.url == "http://127.0.0.1:8086" and config.influx.bucket == "slices"
    assert config.remote_write.url == "http://127.0.0.1:8428/api/v1/write"
    assert config.remote_write.headers == {"X-Scope-OrgID": "operator"}
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


def _clsact(ns: str, dev: str) -> str:
    return subprocess.run(
        ["tc", "-n", ns, "qdisc", "show", "dev", dev, "clsact"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def _filters(ns: str, dev: str, side: str) -> str:
    return subprocess.run(
        ["tc", "-n", ns, "filter", "show", "dev", dev, side],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


#: a classic-BPF filter of some other tool: it classifies every frame
FOREIGN_FILTER = ("prio", "100", "bpf", "bytecode", "1,6 0 0 4294967295", "classid", "1")


@pytest.mark.kernel
@pytest.mark.netns
def test_roles_attach_the_right_programs_and_detach_cleanly(
    recording_dataplane: DataPlane, topology: Topology, tmp_path: Path
) -> None:
    upf, gnb = topology.namespace("upf"), topology.namespace("gnb")
    topology.veth(gnb, "eth0", "192.0.2.1/30", upf, "n3", "192.0.2.2/30")
    topology.veth(gnb, "eth1", "192.0.2.5/30", upf, "n6", "192.0.2.6/30")
    subprocess.run(["ip", "-n", upf, "tuntap", "add", "dev", "ogstun", "mode", "tun"], check=True)
    # another tool's clsact and filter on n3 stay as they were
    subprocess.run(["tc", "-n", upf, "qdisc", "add", "dev", "n3", "clsact"], check=True)
    tc_add = ["tc", "-n", upf, "filter", "add", "dev", "n3", "ingress", *FOREIGN_FILTER]
    subprocess.run(tc_add, check=True)
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"interfaces:\n  - {{name: n3, role: n3, netns: {upf}}}\n"
        f"  - {{name: n6, role: n6, netns: {upf}, tc_egress: false, xdp_mode: generic}}\n"
        f"  - {{name: ogstun, role: n6, netns: {upf}}}\n"
    )
    config = resolve_links(load_config(path), path)
    assert [i.ingress for i in config.interfaces] == ["auto", "xdp-generic", "auto"]
    with Links() as attached:
        attach_interfaces(recording_dataplane, config.interfaces, attached)
        # a veth under auto: TC ingress (tcx), the cheapest measured there
        assert "xdp" not in _link(upf, "n3")
        assert tcx_programs(upf, "n3", "ingress") == ["sauron_n3_ingre"]
        assert tcx_programs(upf, "n3", "egress") == ["sauron_n3_egres"]
        # the other tool's clsact and filter, untouched, run after ours
        assert "clsact" in _clsact(upf, "n3")
        assert "pref 100 " in _filters(upf, "n3", "ingress")
        assert "sauron" not in _filters(upf, "n3", "ingress") + _filters(upf, "n3", "egress")
        # the former xdp_mode still chooses generic XDP
        assert "sauron_n6_ingr" in _link(upf, "n6") and "xdpgeneric" in _link(upf, "n6")
        assert tcx_programs(upf, "n6", "egress") == []
        # the UPF's TUN: bare-IP programs, the sides swapped, TC under auto
        assert tcx_programs(upf, "ogstun", "ingress") == ["sauron_n6_tun_e"]
        assert tcx_programs(upf, "ogstun", "egress") == ["sauron_n6_tun_i"]
        # no qdisc of Sauron's: tcx needs none
        assert _clsact(upf, "n6").strip() == "" and _clsact(upf, "ogstun").strip() == ""
    for link in ("n3", "n6", "ogstun"):
        assert "xdp" not in _link(upf, link)
        assert tcx_programs(upf, link, "ingress") == tcx_programs(upf, link, "egress") == []
    assert "pref 100 " in _filters(upf, "n3", "ingress"), "not ours: left in place"
    assert "clsact" in _clsact(upf, "n3"), "not ours: left in place"
    assert _filters(upf, "n6", "ingress").strip() == ""


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{name: n3, role: n3, ingress: xdp}", "interfaces.0.ingress"),
        ("{name: n3, role: n3, xdp_mode: fast}", "neither generic nor native"),
        ("{name: n3, role: n3, xdp_mode: native, ingress: tc}", "contradicts ingress tc"),
    ],
)
def test_bad_ingress_names_the_field(tmp_path: Path, body: str, fragment: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(f"interfaces: [{body}]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert fragment in str(err.value) and "interfaces.0" in str(err.value), str(err.value)


def test_auto_takes_the_measured_hook_and_tries_native_xdp_on_a_nic() -> None:
    assert ingress_hooks.candidates("auto", "veth") == ("tc",)
    assert ingress_hooks.candidates("auto", "tun") == ("tc",)
    assert ingress_hooks.candidates("auto", None) == ("xdp-native", "tc")
    assert ingress_hooks.candidates("xdp-generic", "veth") == ("xdp-generic",)


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


@pytest.mark.kernel
@pytest.mark.netns
def test_a_driver_without_native_xdp_is_named_or_falls_back_to_tc(
    recording_dataplane: DataPlane, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bridge has no native XDP, like a NIC whose driver lacks it:
    asked for by name it is an error naming the interface; under auto on
    such a NIC (stood in for by the bridge) TC ingress takes over."""
    upf = topology.namespace("upf")
    subprocess.run(["ip", "-n", upf, "link", "add", "n3", "type", "bridge"], check=True)
    subprocess.run(["ip", "-n", upf, "link", "set", "n3", "up"], check=True)
    native = AgentConfig(
        interfaces=[{"name": "n3", "role": "n3", "netns": upf, "ingress": "xdp-native"}]
    )
    with Links() as attached, pytest.raises(RuntimeError, match="n3: ingress xdp-native"):
        attach_interfaces(recording_dataplane, native.interfaces, attached)
    assert "xdp" not in _link(upf, "n3")
    monkeypatch.setattr(
        ingress_hooks, "candidates", lambda requested, kind: (ingress_hooks.XDP_NATIVE, "tc")
    )
    auto = AgentConfig(interfaces=[{"name": "n3", "role": "n3", "netns": upf}])
    with Links() as attached:
        attach_interfaces(recording_dataplane, auto.interfaces, attached)
        assert tcx_programs(upf, "n3", "ingress") == ["sauron_n3_ingre"]
        assert "xdp" not in _link(upf, "n3")
    assert tcx_programs(upf, "n3", "ingress") == []
