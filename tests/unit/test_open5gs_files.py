"""Open5GS's upf.yaml and smf.yaml as `sauron config init --detect` reads
them, in the 2.7 layout and the one before: the N3 and N4 addresses, UE
pools with their gateway, DNN and TUN device, the SMF's metrics server and
S-NSSAIs, each with the place in the file it came from; and the
configuration written from such findings loads with the agent's loader."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from sauron.agent.config import load_config
from sauron.catalog import load_catalog
from sauron.commands.detected_files import agent_text, catalog_text
from sauron.commands.open5gs_detect import Detection, Entry, Gap, SliceFound, detect_slices
from sauron.host.nf_processes import config_option, namespace_of
from sauron.host.open5gs_files import Open5gsFileError, parse_smf_file, parse_upf_file

UPF_27 = """\
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
    client:
  gtpu:
    server:
      - address: 10.0.3.2
  session:
    - subnet: 10.45.0.0/16
      gateway: 10.45.0.1
      dnn: internet
    - subnet: 10.46.0.0/16
      dnn: ims
      dev: ogstun2
    - subnet: 2001:db8:cafe::/48
      gateway: 2001:db8:cafe::1
  metrics:
    server:
      - address: 127.0.0.7
        port: 9090
"""

UPF_BEFORE_27 = """\
logger:
    file: /var/log/open5gs/upf.log
upf:
    pfcp:
      - addr: 127.0.0.7
    gtpu:
      - addr:
        - 10.0.3.2
        - 2001:db8::2
      - dev: eth2
    subnet:
      - addr: 10.45.0.1/16
        dnn: internet
      - addr: 10.46.0.1/16
        dnn: ims
        dev: ogstun2
"""

SMF_27 = """\
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
        port: 9091
  session:
    - subnet: 10.45.0.0/16
      gateway: 10.45.0.1
      dnn: internet
  info:
    - s_nssai:
        - sst: 1
          sd: 000080
          dnn:
            - internet
        - sst: 2
          dnn: [ims, voice]
"""

SMF_BEFORE_27 = """\
smf:
    pfcp:
      - addr: 127.0.0.4
    subnet:
      - addr: 10.45.0.1/16
    metrics:
      - addr: 127.0.0.4
    info:
      - s_nssai:
          - sst: 1
            dnn: internet
"""


def test_upf_file_of_2_7() -> None:
    upf = parse_upf_file(Path("/etc/open5gs/upf.yaml"), UPF_27)
    assert upf.layout == "2.7"
    assert [(e.address, e.where) for e in upf.pfcp] == [
        ("127.0.0.7", "upf.pfcp.server[0].address (line 10)")
    ]
    assert [(e.address, e.where) for e in upf.gtpu] == [
        ("10.0.3.2", "upf.gtpu.server[0].address (line 14)")
    ]
    assert [(str(p.subnet), p.gateway, p.dnn, p.dev) for p in upf.pools] == [
        ("10.45.0.0/16", "10.45.0.1", "internet", "ogstun"),
        # no gateway named: Open5GS takes the subnet's first host
        ("10.46.0.0/16", "10.46.0.1", "ims", "ogstun2"),
        ("2001:db8:cafe::/48", "2001:db8:cafe::1", None, "ogstun"),
    ]
    assert upf.pools[1].where == "upf.session[1].subnet (line 19)"


def test_upf_file_before_2_7() -> None:
    upf = parse_upf_file(Path("upf.yaml"), UPF_BEFORE_27)
    assert upf.layout == "before 2.7"
    assert [(e.address, e.dev, e.where) for e in upf.pfcp] == [
        ("127.0.0.7", None, "upf.pfcp[0].addr (line 5)")
    ]
    assert [(e.address, e.dev, e.where) for e in upf.gtpu] == [
        ("10.0.3.2", None, "upf.gtpu[0].addr[0] (line 8)"),
        ("2001:db8::2", None, "upf.gtpu[0].addr[1] (line 9)"),
        (None, "eth2", "upf.gtpu[1].dev (line 10)"),
    ]
    # the address given is the gateway's, with the pool's prefix
    assert [(p.subnet, p.gateway, p.dnn, p.dev) for p in upf.pools] == [
        (ipaddress.ip_network("10.45.0.0/16"), "10.45.0.1", "internet", "ogstun"),
        (ipaddress.ip_network("10.46.0.0/16"), "10.46.0.1", "ims", "ogstun2"),
    ]


def test_smf_file_of_2_7_reads_sd_as_hex() -> None:
    smf = parse_smf_file(Path("smf.yaml"), SMF_27)
    assert smf.layout == "2.7"
    assert [(m.address, m.port) for m in smf.metrics] == [("127.0.0.4", 9091)]
    # 000080 is no octal number to Open5GS: the SD is hex
    assert [(s.sst, s.sd_hex, s.dnns) for s in smf.snssais] == [
        (1, "000080", ("internet",)),
        (2, None, ("ims", "voice")),
    ]
    assert smf.snssais[1].where == "smf.info[0].s_nssai[1] (line 22)"
    assert [p.dnn for p in smf.pools] == ["internet"]


def test_smf_file_before_2_7_takes_the_default_metrics_port() -> None:
    smf = parse_smf_file(Path("smf.yaml"), SMF_BEFORE_27)
    assert smf.layout == "before 2.7"
    assert [(m.address, m.port, m.where) for m in smf.metrics] == [
        ("127.0.0.4", 9090, "smf.metrics[0].addr (line 7)")
    ]
    assert [(s.sst, s.sd, s.dnns) for s in smf.snssais] == [(1, None, ("internet",))]
    assert [(str(p.subnet), p.gateway) for p in smf.pools] == [("10.45.0.0/16", "10.45.0.1")]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("amf:\n  sbi: {}\n", "no `upf:` section"),
        ("upf:\n  session:\n    - subnet: 10.45.0/33\n", "upf.session[0].subnet (line 3)"),
        ("upf: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_file_that_is_no_upf_file_is_named(text: str, says: str) -> None:
    with pytest.raises(Open5gsFileError, match=r"^upf\.yaml: .*" + re.escape(says)):
        parse_upf_file(Path("upf.yaml"), text)


def test_written_files_load_with_the_agents_loader(tmp_path: Path) -> None:
    """What the detection found, written out, is a configuration the agent
    loads as it is; what it did not find stays in comments."""
    found = Detection(node="upf-host")
    found.interfaces = [
        Entry({"name": "eth1", "role": "n3", "netns": "upf"}, "N3: 10.0.3.2 on eth1"),
        Entry(
            {"name": "ogstun", "role": "n6", "netns": "upf", "link": "upf_device"},
            "N6: ogstun, a tun device\nover two lines",
        ),
    ]
    found.interface_gaps = [Gap("- {name: ogstun2, role: n6}", "ogstun2 is no link")]
    found.pfcp = [Entry({"name": "lo", "netns": "upf"}, "N4: 127.0.0.7 on lo")]
    found.smf_gaps = [Gap("- {url: http://SMF:9090}", "no metrics server")]
    found.watch = [Entry({"name": "open5gs-upfd"}, "its CPU time counts")]
    found.slices = [
        SliceFound("internet", 1, "000080", ["internet"], [("10.45.0.0/16", "upf.yaml")], "smf")
    ]
    (tmp_path / "slices.yaml").write_text(catalog_text(found))
    written = agent_text(found, "slices.yaml", 18080)
    (tmp_path / "agent.yaml").write_text(written)
    config = load_config(tmp_path / "agent.yaml")
    assert [(i.name, i.role, i.netns, i.link) for i in config.interfaces] == [
        ("eth1", "n3", "upf", "auto"),
        ("ogstun", "n6", "upf", "upf_device"),
    ]
    assert [(w.name, w.netns) for w in config.control_plane.pfcp] == [("lo", "upf")]
    assert config.control_plane.open5gs_smf == []
    assert config.service.port == 18080
    assert config.catalog == tmp_path / "slices.yaml"
    assert "# N3: 10.0.3.2 on eth1\n  - name: eth1\n" in written
    assert "# not found: ogstun2 is no link\n  # - {name: ogstun2, role: n6}\n" in written
    assert "# over two lines\n" in written
    catalog = load_catalog(config.catalog)
    assert [
        (s.name, str(s.spec.snssai), [str(n) for n in s.spec.ue_subnets]) for s in catalog.slices
    ] == [("internet", "1-000080", ["10.45.0.0/16"])]
    # every line that is not a comment is the configuration's own
    assert yaml.safe_load(written)["interfaces"][1]["link"] == "upf_device"


@pytest.mark.parametrize(
    ("argv", "config"),
    [
        (["open5gs-upfd", "-c", "/etc/open5gs/upf-embb.yaml"], "/etc/open5gs/upf-embb.yaml"),
        (["/usr/bin/open5gs-upfd", "-d", "-c/srv/upf.yaml"], "/srv/upf.yaml"),
        (["open5gs-upfd", "-c", "a.yaml", "-c", "b.yaml"], "b.yaml"),
        (["open5gs-upfd"], None),
        (["open5gs-upfd", "--config", "x.yaml"], None),
    ],
)
def test_the_file_a_network_function_was_started_with(argv: list[str], config: str | None) -> None:
    assert config_option(argv) == config


def test_a_namespace_is_named_as_a_configuration_names_it(tmp_path: Path) -> None:
    """Its ip-netns name when a file there is the same namespace (the same
    inode, here a hard link standing in for the bind mount), else the one
    process of its name, else its pid; none when it is the agent's own."""
    proc, named = tmp_path / "proc", tmp_path / "netns"
    for pid in ("self", "42", "43"):
        (proc / pid / "ns").mkdir(parents=True)
        (proc / pid / "ns" / "net").write_text(pid)
    named.mkdir()
    assert namespace_of(42, "open5gs-upfd", True, proc, named)[0] == "process:open5gs-upfd"
    assert namespace_of(42, "open5gs-upfd", False, proc, named)[0] == "pid:42"
    (named / "upf").hardlink_to(proc / "42" / "ns" / "net")
    assert namespace_of(42, "open5gs-upfd", False, proc, named) == (
        "upf",
        f"namespace upf ({named / 'upf'})",
    )
    (proc / "43" / "ns" / "net").unlink()
    (proc / "43" / "ns" / "net").hardlink_to(proc / "self" / "ns" / "net")
    assert namespace_of(43, "open5gs-smfd", True, proc, named)[0] is None


def test_a_ue_pool_goes_to_the_one_slice_that_serves_its_dnn(tmp_path: Path) -> None:
    """One slice per S-NSSAI; a pool whose DNN two S-NSSAIs serve, or that
    names none beside several S-NSSAIs, belongs to no slice and is said so:
    the catalog written still loads."""
    smf = parse_smf_file(
        Path("smf.yaml"),
        "smf:\n  info:\n    - s_nssai:\n"
        '        - {sst: 1, sd: "000001", dnn: [internet]}\n'
        "        - {sst: 2, dnn: [internet, ims]}\n"
        "        - {sst: 3}\n",
    )
    upf = parse_upf_file(
        Path("upf.yaml"),
        "upf:\n  session:\n    - {subnet: 10.45.0.0/16, dnn: internet}\n"
        "    - {subnet: 10.46.0.0/16, dnn: ims}\n    - {subnet: 10.47.0.0/16}\n",
    )
    found = Detection(node="x")
    detect_slices([upf], [smf], found)
    assert [(s.name, s.sst, s.sd, [n for n, _ in s.subnets]) for s in found.slices] == [
        ("internet", 1, "000001", []),
        ("ims", 2, None, ["10.46.0.0/16"]),
        ("sst3", 3, None, []),
    ]
    assert found.missing == [
        "slices: UE pool 10.45.0.0/16 belongs to no one slice: DNN internet is served by 2 S-NSSAIs",
        "slices: UE pool 10.47.0.0/16 belongs to no one slice: it names no DNN and the SMF "
        "serves several S-NSSAIs",
    ]
    (tmp_path / "slices.yaml").write_text(catalog_text(found))
    assert [s.name for s in load_catalog(tmp_path / "slices.yaml").slices] == [
        "internet",
        "ims",
        "sst3",
    ]
