"""The agent's configuration file: which interfaces carry which reference
point, the slice catalog, and (as later parts land) the service and
publisher. Errors name the file and the field."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sauron.abi import diagnosis_layout, energy_layout
from sauron.control.settings import ControlPlaneConfig
from sauron.energy.model import IdleRule
from sauron.energy.watch import WatchEntry
from sauron.export.influx.settings import InfluxConfig
from sauron.export.otlp.settings import OtlpConfig
from sauron.export.remote_write.settings import RemoteWriteConfig
from sauron.host.field_errors import field_problems, yaml_lines_of
from sauron.host.namespace_ref import (
    DOCKER_SOCKET,
    NamespaceError,
    NamespaceRef,
    namespace_identity,
    resolve,
)
from sauron.host.secretfile import read_secret_file
from sauron.host.yamlfile import FileProblems, read_yaml
from sauron.security.settings import SecurityConfig

#: N3 (gNB side) and N9 (peer UPF) carry GTP-U; N6 carries plain IP.
Role = Literal["n3", "n9", "n6"]
#: the hook that sees what a link receives
IngressHook = Literal["auto", "xdp-native", "xdp-generic", "tc"]
GTPU_ROLES = ("n3", "n9")


#: the environment variable that names the node, over the file's `node`
NODE_VARIABLE = "SAURON_NODE"


class ConfigError(FileProblems):
    """An agent configuration that cannot be used."""


class InterfaceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the link's name in its namespace
    name: Annotated[str, Field(min_length=1, max_length=15, pattern=r"^[A-Za-z0-9_.:@-]+$")]
    #: its reference point: n3 and n9 carry GTP-U, n6 the data network's IP
    role: Role
    #: the interface's network namespace: a name (ip netns), a namespace
    #: file's path, pid:N, process:NAME or container:NAME (none: the agent's)
    netns: NamespaceRef | None = None
    #: the hook that sees what the link receives. "tc": TC ingress (tcx,
    #: first of the hook's programs, before other tools' clsact filters), on
    #: every link, after the socket buffer exists. "xdp-generic": XDP on
    #: every link, at the price of copying each frame's head. "xdp-native":
    #: XDP in the driver, before any socket buffer on a NIC that has it (on
    #: a veth it converts every frame and costs the most). An XDP program of
    #: another tool is never replaced: XDP asked for by name is then an
    #: error naming it. "auto": the cheapest measured for the link's kind
    #: (veth: tc), tc on other virtual links, and on a physical NIC native
    #: XDP where the driver takes it and no other program holds the hook,
    #: else tc. The former `xdp_mode: generic|native` still reads as
    #: xdp-generic|xdp-native
    ingress: IngressHook = "auto"
    #: egress is seen on TC egress (tcx; both directions where the UPF sends)
    tc_egress: bool = True
    #: what the link is. "ethernet": a NIC, veth or bridge; frames arrive from
    #: the network and leave to it. "upf_device": the UPF's own TUN or GTP
    #: device on N6 (no link-layer header); the frames it receives are the ones
    #: the UPF sends towards the data network. "auto" reads it from the link
    #: at start: a tun, gtp or gtp5g device without Ethernet header is a
    #: upf_device
    link: Literal["auto", "ethernet", "upf_device"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _former_xdp_mode(cls, data: object) -> object:
        """Configurations written before `ingress` existed keep working."""
        if not isinstance(data, dict) or "xdp_mode" not in data:
            return data
        data = dict(data)
        mode = data.pop("xdp_mode")
        if mode not in ("generic", "native"):
            raise ValueError(f"xdp_mode {mode!r} is neither generic nor native (or use ingress)")
        hook = f"xdp-{mode}"
        if data.get("ingress", "auto") not in ("auto", hook):
            raise ValueError(
                f"xdp_mode {mode} contradicts ingress {data['ingress']}: keep ingress only"
            )
        data["ingress"] = hook
        return data

    @model_validator(mode="after")
    def _upf_device_on_n6(self) -> InterfaceConfig:
        if self.link == "upf_device" and self.role != "n6":
            raise ValueError(
                f"link upf_device is the UPF's decapsulated side: role must be n6, not {self.role}"
            )
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceConfig(BaseModel):
    """The REST API. Anywhere but loopback it needs a token: the file holds
    it (one line, the agent's own file). Without a token the per-session
    routes (UE addresses, TEIDs, SUPIs) answer only over the UNIX socket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the address the API and dashboard listen on
    host: str = "127.0.0.1"
    #: their TCP port (0: any free one, printed at start)
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    #: a file whose first line is the bearer token every route but the probes asks for
    #: (the agent's own: mode 0600 or stricter, owned by its user)
    token_file: Path | None = None
    #: a UNIX socket the API listens on too, mode 0600: root and the agent's
    #: user ask there without a token, per-UE data included (none: no socket)
    socket: Path | None = None
    #: requests per second per client address (0: no limit) and burst size
    rate_per_s: Annotated[float, Field(ge=0)] = 100.0
    #: requests a client may send at once before the rate applies
    burst: Annotated[float, Field(ge=1)] = 200.0
    #: /metrics also under the names Open5GS's UPF exposes (fivegs_ep_n3_gtp_*), per
    #: slice, so dashboards made for an Open5GS UPF show Sauron's counts (docs/3gpp.md)
    open5gs_metric_names: bool = False

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ServiceConfig:
        if self.token_file is None and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not loopback: set token_file, the API must not be open"
            )
        return self


class SlaRule(BaseModel):
    """A violation opens after `open_bad` failed checks among the last
    `window` and closes after `close_good` passed checks in a row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: checks (intervals) looked back over
    window: Annotated[int, Field(ge=1, le=1000)] = 5
    #: failed checks within the window that open a violation
    open_bad: Annotated[int, Field(ge=1)] = 3
    #: passed checks in a row that close it
    close_good: Annotated[int, Field(ge=1)] = 3

    @model_validator(mode="after")
    def _fits(self) -> SlaRule:
        if self.open_bad > self.window:
            raise ValueError(f"open_bad ({self.open_bad}) exceeds window ({self.window})")
        return self


class HistoryConfig(BaseModel):
    """Full resolution for `recent` intervals, then averages of `fold`
    intervals, `folded` of them: memory is bounded whatever the run time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: intervals kept at full resolution
    recent: Annotated[int, Field(ge=1, le=100_000)] = 300
    #: intervals averaged into one beyond them
    fold: Annotated[int, Field(ge=2, le=3600)] = 10
    #: averaged intervals kept
    folded: Annotated[int, Field(ge=0, le=100_000)] = 360


class DataPathConfig(BaseModel):
    """The data path's life beside the agent's: it is pinned under
    /sys/fs/bpf/sauron/ (a folder per node and configuration) and counts on
    while no agent runs, from a crash until the next start adopts it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: true: stopping (SIGTERM) leaves the programs attached and counting for
    #: the next start or an upgrade (as `sauron run --keep-datapath`); false:
    #: stopping detaches them and removes the pins
    keep_on_stop: bool = False
    #: where the agent keeps its last reading of the counters, so that the
    #: first interval after a restart covers the time no agent ran (a tmpfs:
    #: it need not outlive the pins, which a reboot removes)
    state_dir: Path = Path("/run/sauron")


class EnergyConfig(BaseModel):
    """The energy estimator: the network functions whose CPU time counts
    (the UPF, SMF, ...), how idle power is shared, and the power profile
    (chosen by CPU model when not named)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: false: no energy estimate (the API says so)
    enabled: bool = True
    #: the network functions whose CPU time counts besides the packet processing
    watch: Annotated[list[WatchEntry], Field(max_length=energy_layout.MAX_WATCHED)] = []
    #: none: idle power is reported, not attributed; proportional: shared by
    #: the slices' dynamic energy; equal: the same part for every slice
    idle: IdleRule = "none"
    #: a power profile by name (energy/profiles); none: chosen by CPU model
    profile: str | None = None
    #: more power profiles, besides the ones shipped
    profiles_dir: Path | None = None
    #: clock ticks per second that bring every CPU's accounting up to date
    tick_hz: Annotated[int, Field(ge=10, le=1000)] = 100


class EvidenceConfig(BaseModel):
    """The heads of a diagnosed slice's frames, written as a pcapng per
    latency or loss violation (docs/diagnosis.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: false: no frame is copied and no file written
    enabled: bool = True
    #: where the files go (made readable by root only: they hold subscribers' addresses)
    directory: Path = Path("/var/lib/sauron/evidence")
    #: frames kept per diagnosed slice before its violation opens (the oldest go)
    ring_frames: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    #: a violation's file stops growing at this size
    max_file_mib: Annotated[float, Field(gt=0, le=4096)] = 16
    #: the folder's size: the oldest files are removed beyond it
    max_total_mib: Annotated[float, Field(gt=0, le=1_048_576)] = 256


class DiagnosisConfig(BaseModel):
    """Why a slice is late or lossy: a kernel probe attached only while a
    slice's latency or loss target is at risk or violated, its factors
    ranked per degraded interval (docs/diagnosis.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: false: the probe is not built and nothing is diagnosed
    enabled: bool = True
    #: healthy intervals after a slice's last failure before the probe is detached
    tail_intervals: Annotated[int, Field(ge=0, le=3600)] = 5
    #: diagnoses kept per slice (the API's history)
    keep: Annotated[int, Field(ge=1, le=10_000)] = 100
    #: the network functions whose waits are traced, by name or pid; none:
    #: energy.watch's (cgroup entries are not traced)
    watch: Annotated[list[WatchEntry], Field(max_length=diagnosis_layout.WATCHED)] | None = None
    #: the frames' heads kept as a pcapng per violation
    evidence: EvidenceConfig = EvidenceConfig()


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: this agent's name in the published series (SAURON_NODE in the
    #: environment wins: a DaemonSet gives each agent its node's name)
    node: Annotated[str, Field(min_length=1)] = "upf-1"
    #: the slice catalog (YAML; relative to this file); none: slices/default.yaml
    catalog: Path | None = None
    #: the links the data-path programs attach to
    interfaces: Annotated[list[InterfaceConfig], Field(min_length=1)]
    #: seconds between two readings of the maps: one KPI interval
    interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    service: ServiceConfig = ServiceConfig()
    sla: SlaRule = SlaRule()
    history: HistoryConfig = HistoryConfig()
    energy: EnergyConfig = EnergyConfig()
    diagnosis: DiagnosisConfig = DiagnosisConfig()
    #: the security checks on uplink G-PDUs and their detections
    security: SecurityConfig = SecurityConfig()
    #: the InfluxDB publisher (SAURON_INFLUX_* in the environment win over it)
    influx: InfluxConfig = InfluxConfig()
    #: OTLP/HTTP metrics to an OpenTelemetry Collector (OTEL_EXPORTER_OTLP_*,
    #: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES in the environment win)
    otlp: OtlpConfig = OtlpConfig()
    #: Prometheus remote write (SAURON_REMOTE_WRITE_* in the environment win over it)
    remote_write: RemoteWriteConfig = RemoteWriteConfig()
    #: where PDU sessions are learned from (PFCP on N4, an SMF's session list)
    control_plane: ControlPlaneConfig = ControlPlaneConfig()
    datapath: DataPathConfig = DataPathConfig()
    #: the container engine's API socket, asked for container:NAME namespaces
    container_socket: Path = DOCKER_SOCKET

    @model_validator(mode="after")
    def _distinct_interfaces(self) -> AgentConfig:
        seen: set[tuple[str | None, str]] = set()
        for itf in self.interfaces:
            key = (itf.netns, itf.name)
            if key in seen:
                raise ValueError(f"interface {itf.name!r} listed twice")
            seen.add(key)
        return self


def load_config(path: Path | str, environ: Mapping[str, str] = os.environ) -> AgentConfig:
    path = Path(path)
    raw = read_yaml(path, ConfigError)
    if environ.get(NODE_VARIABLE) and isinstance(raw, dict):
        raw = {**raw, "node": environ[NODE_VARIABLE]}
    try:
        config = AgentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = field_problems(exc, AgentConfig, lambda: yaml_lines_of(path))
        raise ConfigError(path, problems) from None
    if config.catalog is not None and not config.catalog.is_absolute():
        config = config.model_copy(update={"catalog": (path.parent / config.catalog).resolve()})
    for section, names in (
        ("service", ("token_file", "socket")),
        ("energy", ("profiles_dir",)),
        ("influx", ("spool_dir", "token_file")),
        ("remote_write", ("spool_dir", "token_file", "password_file")),
    ):
        part = getattr(config, section)
        relative = {
            name: (path.parent / value).resolve()
            for name in names
            if (value := getattr(part, name)) is not None and not value.is_absolute()
        }
        if relative:
            config = config.model_copy(update={section: part.model_copy(update=relative)})
    evidence = config.diagnosis.evidence
    if not evidence.directory.is_absolute():
        moved = evidence.model_copy(
            update={"directory": (path.parent / evidence.directory).resolve()}
        )
        diagnosis = config.diagnosis.model_copy(update={"evidence": moved})
        config = config.model_copy(update={"diagnosis": diagnosis})
    return config


def resolve_namespaces(config: AgentConfig, source: Path) -> AgentConfig:
    """The configuration with every interface's and N4 watch's namespace
    reference resolved to a namespace file, done once at start (a process or
    container named is asked for its namespace now). Two references to the
    same interface in the same namespace are refused."""
    problems: list[str] = []

    def resolved(ref: str | None, where: str) -> str | None:
        try:
            return resolve(ref, config.container_socket)
        except NamespaceError as exc:
            problems.append(f"field {where}.netns: {exc}")
            return None

    interfaces = [
        itf.model_copy(update={"netns": resolved(itf.netns, f"interfaces.{i}")})
        for i, itf in enumerate(config.interfaces)
    ]
    watches = [
        w.model_copy(update={"netns": resolved(w.netns, f"control_plane.pfcp.{i}")})
        for i, w in enumerate(config.control_plane.pfcp)
    ]
    if problems:
        raise ConfigError(source, problems)
    seen: dict[tuple[int, int, str], int] = {}
    for i, itf in enumerate(interfaces):
        key = (*namespace_identity(itf.netns), itf.name)
        if key in seen:
            problems.append(
                f"field interfaces.{i}: {itf.name!r} in the namespace of interfaces.{seen[key]} again"
            )
        seen[key] = i
    if problems:
        raise ConfigError(source, problems)
    control = config.control_plane.model_copy(update={"pfcp": watches})
    return config.model_copy(update={"interfaces": interfaces, "control_plane": control})


def read_token(path: Path, agents_own: bool = True) -> str:
    """The API token in a file (first line, surrounding blanks dropped). The
    agent's must be its own (see secretfile); a client reading it
    (agents_own=False) may share it with a group of operators."""
    token = read_secret_file(path, "token file", ConfigError, agents_own)
    if len(token) < 16:
        raise ConfigError(path, ["the token must be at least 16 characters long"])
    return token
