"""deploy/k8s: the manifests pass the Kubernetes schemas (kubernetes-validate,
its bundled schemas, strict), and what they grant is what the agent uses:
the capabilities and host paths of sauron/host/access.py, probes on routes
the service answers without a token, the configuration's files where the
volumes put them, memory from the benchmark's figures. Then the agent is
run the way the DaemonSet runs it: with only those capabilities, the host
paths read-only, the ConfigMap's configuration, and a UPF process found by
name in a namespace of its own. No cluster runs here; the one API server
rule beyond the schemas that such a pod meets (no allowPrivilegeEscalation:
false beside SYS_ADMIN) is checked apart."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_process import REPO, start_agent
from fake_data_plane import FakeDataPlane
from holders import holder, ingress_attached, link_into
from hooks import tcx_programs

from sauron.agent.config import NODE_VARIABLE, load_config
from sauron.agent.runtime import AgentRuntime
from sauron.catalog import load_catalog
from sauron.host.access import CAPABILITIES, HOST_PATHS
from sauron.host.netns import Topology, inside
from sauron.service.app import create_app
from sauron.service.guard import OPEN_PATHS

K8S = REPO / "deploy" / "k8s"
VALIDATOR = Path(sys.executable).parent / "kubernetes-validate"
IMAGE_ROOT = Path("/opt/sauron")  # the Dockerfile's WORKDIR, where the repo is installed
UPF_PROCESS = "open5gs-upfd"


def documents() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    return documents()


def agent_pod(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = manifests[("DaemonSet", "sauron-agent")]["spec"]["template"]["spec"]
    return pod


def agent_container(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    (container,) = agent_pod(manifests)["containers"]
    return dict(container)


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VALIDATOR), "--strict", "--quiet", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manifests_pass_the_kubernetes_schemas_and_a_broken_copy_does_not(
    tmp_path: Path,
) -> None:
    files = sorted(K8S.glob("*.yaml"))
    assert {f.name for f in files} >= {"daemonset.yaml", "agent-config.yaml", "influxdb.yaml"}
    done = validate(*files)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "daemonset.yaml"
    broken.write_text(
        (K8S / "daemonset.yaml").read_text().replace("containerPort: 8080", "containerPort: http")
    )
    done = validate(broken)
    assert done.returncode != 0 and "containerPort" in done.stdout + done.stderr


def test_the_agent_is_granted_what_it_uses_and_no_more(
    manifests: dict[tuple[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    pod, container = agent_pod(manifests), agent_container(manifests)
    security = container["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert sorted(security["capabilities"]["add"]) == sorted(c.name for c in CAPABILITIES)
    assert security.get("privileged") is False
    # the API server refuses allowPrivilegeEscalation: false beside SYS_ADMIN
    assert security.get("allowPrivilegeEscalation") is not False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    host_paths = {v["hostPath"]["path"]: name for name, v in volumes.items() if "hostPath" in v}
    for needed in HOST_PATHS:
        mount = mounts[needed.path]
        assert host_paths[needed.path] == mount["name"], needed.name
        assert mount.get("readOnly", False) is needed.read_only, needed.name
    config = load_agent_config(manifests, tmp_path)
    # nothing else of the host's, but the spool that outlives the pod
    assert set(host_paths) == {h.path for h in HOST_PATHS} | {str(config.influx.spool_dir)}
    assert mounts[str(config.influx.spool_dir)].get("readOnly", False) is False
    # named processes are found in the host's process table
    references = [i.netns or "" for i in config.interfaces] + [
        w.netns or "" for w in config.control_plane.pfcp
    ]
    assert any(r.startswith(("process:", "pid:")) for r in references)
    assert pod["hostPID"] is True
    assert pod.get("hostNetwork", False) is False
    # the namespace admits such a pod
    labels = manifests[("Namespace", "sauron")]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


def load_agent_config(manifests: dict[tuple[str, str], dict[str, Any]], folder: Path) -> Any:
    """The ConfigMap's agent.yaml, loaded as the agent loads it."""
    path = folder / "agent.yaml"
    path.write_text(manifests[("ConfigMap", "sauron-agent")]["data"]["agent.yaml"])
    return load_config(path, environ={})


def test_probes_ports_files_and_tokens_meet_the_agent(
    manifests: dict[tuple[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    container = agent_container(manifests)
    pod = agent_pod(manifests)
    config = load_agent_config(manifests, tmp_path)
    (port,) = container["ports"]
    assert port["containerPort"] == config.service.port and port["name"] == "http"
    assert config.service.host == "0.0.0.0"  # the kubelet probes the pod's address
    routes = {r.resource.canonical for r in create_app_routes() if r.resource is not None}
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == (path, "http"), probe
        assert path in routes and path in OPEN_PATHS, f"{probe}: the kubelet sends no token"
    # the configuration where the ConfigMap is mounted, and the arguments name it
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_dir = Path(mounts[next(n for n, v in volumes.items() if "configMap" in v)])
    assert container["args"] == ["run", "--config", str(config_dir / "agent.yaml")]
    # the API token is the Secret's file; InfluxDB's comes from the same Secret
    token_dir = Path(mounts["tokens"])
    assert config.service.token_file.parent == token_dir
    items = volumes["tokens"]["secret"]["items"]
    assert {i["path"] for i in items} == {config.service.token_file.name}
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    assert env[NODE_VARIABLE] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    influx_token = env["SAURON_INFLUX_TOKEN"]["secretKeyRef"]
    assert influx_token["name"] == volumes["tokens"]["secret"]["secretName"]
    influxdb = manifests[("StatefulSet", "influxdb")]["spec"]["template"]["spec"]["containers"][0]
    init = {e["name"]: e.get("value", e.get("valueFrom")) for e in influxdb["env"]}
    assert init["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == {"secretKeyRef": influx_token}
    assert init["DOCKER_INFLUXDB_INIT_ORG"] == config.influx.org
    assert init["DOCKER_INFLUXDB_INIT_BUCKET"] == config.influx.bucket
    service = manifests[("Service", "influxdb")]
    (influx_port,) = service["spec"]["ports"]
    assert config.influx.url == (
        f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:"
        f"{influx_port['port']}"
    )
    # the catalog is the image's copy of slices/
    assert config.catalog is not None and config.catalog.is_relative_to(IMAGE_ROOT)
    assert (REPO / config.catalog.relative_to(IMAGE_ROOT)).is_file()
    dockerfile = (REPO / "Dockerfile").read_text()
    # the package is installed, not run in place: its C, catalog and profiles are in it
    assert f"WORKDIR {IMAGE_ROOT}" in dockerfile and "COPY slices slices" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile
    # its dependencies from the lock file, checked by hash
    assert "--require-hashes -r requirements.lock" in dockerfile
    # one image for every deployment, at the project's version
    compose = yaml.safe_load((REPO / "deploy" / "open5gs" / "compose.yaml").read_text())
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version is not None
    assert container["image"] == compose["services"]["sauron"]["image"]
    assert container["image"] == f"sauron-agent:{version.group(1)}"


def create_app_routes() -> list[Any]:
    """The service's routes, from the app the agent serves."""
    catalog = load_catalog(None)
    return list(create_app(AgentRuntime(catalog, FakeDataPlane(catalog))).router.routes())


def readme_figure(name: str) -> tuple[float, str]:
    """A row of the performance table (docs/performance.md): (value, what it measured)."""
    for line in (REPO / "docs" / "performance.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] == f"`{name}`":
            return float(cells[1].replace(" ", "")), cells[5]
    raise AssertionError(f"no {name} in docs/performance.md's table")


def test_memory_follows_the_benchmark_figures(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    daemonset = manifests[("DaemonSet", "sauron-agent")]
    cpus = int(daemonset["metadata"]["annotations"]["sauron.io/sized-for-cpus"])
    rss_mb, _ = readme_figure("agent_rss_mb")
    maps_mb, measured = readme_figure("datapath_map_memory_mb")
    found = re.search(r"on (\d+) possible CPUs", measured)
    assert found is not None, measured
    per_cpu_mb = maps_mb / int(found.group(1))
    resources = agent_container(manifests)["resources"]

    def mib(quantity: str) -> float:
        number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
        return int(number) * (1024 if unit == "Gi" else 1)

    need_mb = rss_mb + per_cpu_mb * cpus
    assert mib(resources["limits"]["memory"]) * 1.048576 >= need_mb * 1.1, need_mb
    assert mib(resources["requests"]["memory"]) * 1.048576 >= rss_mb + per_cpu_mb * 2


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.kernel
@pytest.mark.netns
def test_the_agent_runs_as_the_daemonset_runs_it(
    manifests: dict[tuple[str, str], dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    """Only the DaemonSet's capabilities (the bounding set of a process that
    is root, as the container's is), every host path read-only in a mount
    namespace of its own, the ConfigMap's configuration with the image's
    paths made local, and the UPF process found by its name."""
    container = agent_container(manifests)
    config = yaml.safe_load(manifests[("ConfigMap", "sauron-agent")]["data"]["agent.yaml"])
    token = "k8s-daemonset-test-token"
    (tmp_path / "api-token").write_text(token + "\n")
    (tmp_path / "api-token").chmod(0o400)  # the Secret's defaultMode
    config["catalog"] = str(REPO / Path(config["catalog"]).relative_to(IMAGE_ROOT))
    config["service"] |= {"host": "127.0.0.1", "port": 0, "token_file": str(tmp_path / "api-token")}
    del config["influx"]  # no InfluxDB here: the publisher stays off
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))

    upf_binary = tmp_path / UPF_PROCESS
    shutil.copy(shutil.which("sleep") or "/bin/sleep", upf_binary)
    gnb = topology.namespace("gnb")
    with holder(str(upf_binary)) as pid:
        for name in ("n3", "n4"):
            link_into(topology, gnb, f"g{name}", pid, name)
        with inside(f"/proc/{pid}/ns/net"):
            subprocess.run(["ip", "tuntap", "add", "dev", "ogstun", "mode", "tun"], check=True)
            subprocess.run(["ip", "link", "set", "ogstun", "up"], check=True)
        caps = ",".join(
            "+" + c.lower() for c in container["securityContext"]["capabilities"]["add"]
        )
        read_only = " && ".join(
            f"mount --bind {p} {p} && mount -o remount,bind,ro {p}"
            for p in (h.path for h in HOST_PATHS if h.read_only)
            if Path(p).is_dir()
        )
        wrapper = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'{read_only} && exec setpriv --bounding-set=-all,{caps} --inh-caps=-all "$@"',
            "sh",
        ]
        proc, url = start_agent(path, within_s=120, wrapper=wrapper)
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            bounding = int(re.search(r"CapBnd:\s+(\w+)", status).group(1), 16)  # type: ignore[union-attr]
            granted = {c.name for c in CAPABILITIES if bounding & (1 << c.bit)}
            assert granted <= set(container["securityContext"]["capabilities"]["add"])
            assert bounding & ~sum(1 << c.bit for c in CAPABILITIES) == 0
            auth = {"Authorization": f"Bearer {token}"}
            assert get(f"{url}/healthz")[0] == 200
            assert get(f"{url}/api/v1/slices")[0] == 401
            assert get(f"{url}/api/v1/slices", auth)[0] == 200
            for _ in range(100):
                if get(f"{url}/readyz")[0] == 200:
                    break
                time.sleep(0.1)
            assert get(f"{url}/readyz")[0] == 200
            energy = json.loads(get(f"{url}/api/v1/energy", auth)[1])
            assert energy["available"] is True, energy["reason"]
            assert ingress_attached(pid, "n3") and ingress_attached(pid, "ogstun")
            egress = tcx_programs(f"/proc/{pid}/ns/net", "ogstun", "egress")
            assert egress == ["sauron_n6_tun_i"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        assert not ingress_attached(pid, "n3") and not ingress_attached(pid, "ogstun")
