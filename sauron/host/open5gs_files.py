"""What an Open5GS UPF's and SMF's configuration files say that Sauron
needs: the UPF's N3 (GTP-U) and N4 (PFCP) addresses, its TUN devices and
UE pools; the SMF's metrics server and the S-NSSAIs it serves with their
DNNs. Each value keeps where it was read (the key's path and its line), so
that a configuration written from it can say so.

Both layouts Open5GS has used are read: 2.7 and later
(`pfcp: server: [- address: ...]`, `session: [- subnet: 10.45.0.0/16,
gateway: ...]`) and the earlier one (`pfcp: [- addr: ...]`,
`subnet: [- addr: 10.45.0.1/16]`, the gateway's address with the pool's
prefix). Scalars are read as the text the file holds: an SD such as
000080 is hex to Open5GS, never a YAML number."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sauron.host.field_errors import Location, yaml_lines
from sauron.host.yamlfile import MAX_YAML_BYTES

#: the device Open5GS gives a UE pool that names none
DEFAULT_TUN = "ogstun"
#: the port of an Open5GS metrics server that names none
DEFAULT_METRICS_PORT = 9090

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Open5gsFileError(ValueError):
    """An Open5GS file that cannot be read, or holds no section we need."""


@dataclass(frozen=True)
class Endpoint:
    """A server entry: an address (IP or host name) or a device, as given."""

    address: str | None
    dev: str | None
    port: int | None
    #: the entry's place in the file: "upf.gtpu.server[0].address (line 14)"
    where: str


@dataclass(frozen=True)
class UePool:
    subnet: IpNetwork
    #: the address the UPF's TUN device holds in the pool
    gateway: str
    dnn: str | None
    #: the TUN device the pool's packets leave the UPF by
    dev: str
    where: str


@dataclass(frozen=True)
class ServedSnssai:
    sst: int
    #: 24 bits, as Open5GS reads it (hex)
    sd: int | None
    dnns: tuple[str, ...]
    where: str

    @property
    def sd_hex(self) -> str | None:
        return None if self.sd is None else f"{self.sd:06x}"


@dataclass(frozen=True)
class UpfFile:
    path: Path
    #: "2.7" or "before 2.7"
    layout: str
    pfcp: tuple[Endpoint, ...]
    gtpu: tuple[Endpoint, ...]
    pools: tuple[UePool, ...]


@dataclass(frozen=True)
class SmfFile:
    path: Path
    layout: str
    metrics: tuple[Endpoint, ...]
    snssais: tuple[ServedSnssai, ...]
    pools: tuple[UePool, ...]


class _Reader:
    """Walks one file's YAML, naming each place it reads."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = yaml_lines(text)

    def where(self, location: Location) -> str:
        shown = ""
        for part in location:
            shown += f"[{part}]" if isinstance(part, int) else (f".{part}" if shown else part)
        line = next(
            (
                self.lines[location[:n]]
                for n in range(len(location), 0, -1)
                if location[:n] in self.lines
            ),
            None,
        )
        return shown if line is None else f"{shown} (line {line})"


def _read(path: Path, text: str | None) -> tuple[Any, str]:
    if text is None:
        try:
            with path.open("rb") as f:
                data = f.read(MAX_YAML_BYTES + 1)
        except OSError as exc:
            raise Open5gsFileError(f"{path}: cannot read: {exc.strerror}") from None
        if len(data) > MAX_YAML_BYTES:
            raise Open5gsFileError(f"{path}: too large to be an Open5GS configuration")
        text = data.decode("utf-8", errors="replace")
    try:
        # every scalar as the text the file holds
        return yaml.load(text, Loader=yaml.BaseLoader), text
    except yaml.YAMLError as exc:
        raise Open5gsFileError(f"{path}: not valid YAML: {exc}") from None


def _section(doc: Any, path: Path, name: str) -> dict[str, Any]:
    section = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(section, dict):
        raise Open5gsFileError(f"{path}: no `{name}:` section (is it an Open5GS {name}.yaml?)")
    return section


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _servers(
    reader: _Reader, part: Any, at: Location, with_port: bool = False
) -> tuple[list[Endpoint], str | None]:
    """The entries of a `pfcp:`/`gtpu:`/`metrics:` part, and the layout
    they are written in (None: the part is absent)."""
    if isinstance(part, dict):
        entries, layout, at = _as_list(part.get("server")), "2.7", (*at, "server")
        key = "address"
    elif isinstance(part, list):
        entries, layout, key = part, "before 2.7", "addr"
    else:
        return [], None
    found: list[Endpoint] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        port = _port(entry.get("port")) if with_port else None
        addresses = _as_list(entry.get(key) if key in entry else entry.get("address"))
        if not addresses:
            dev = entry.get("dev") if isinstance(entry.get("dev"), str) else None
            name = entry.get("name") if isinstance(entry.get("name"), str) else None
            field = "dev" if dev else ("name" if name else key)
            found.append(Endpoint(name, dev, port, reader.where((*at, i, field))))
            continue
        real_key = key if key in entry else "address"
        for j, address in enumerate(addresses):
            place: Location = (*at, i, real_key) if len(addresses) == 1 else (*at, i, real_key, j)
            dev = entry.get("dev") if isinstance(entry.get("dev"), str) else None
            found.append(Endpoint(str(address), dev, port, reader.where(place)))
    return found, layout


def _port(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _pools(reader: _Reader, section: dict[str, Any], top: str) -> tuple[list[UePool], str | None]:
    """`session:` (2.7: subnet and gateway) or `subnet:` (before: the
    gateway's address with the pool's prefix)."""
    if "session" in section:
        entries, layout, key = _as_list(section["session"]), "2.7", "session"
    elif "subnet" in section:
        entries, layout, key = _as_list(section["subnet"]), "before 2.7", "subnet"
    else:
        return [], None
    pools: list[UePool] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        text = entry.get("subnet") if key == "session" else entry.get("addr")
        if not isinstance(text, str):
            continue
        place = reader.where((top, key, i, "subnet" if key == "session" else "addr"))
        try:
            given = ipaddress.ip_interface(text.strip())
        except ValueError:
            raise Open5gsFileError(
                f"{reader.path}: {place}: {text!r} is not an IP prefix"
            ) from None
        gateway = entry.get("gateway")
        if not isinstance(gateway, str):
            # before 2.7 the address given is the gateway's; 2.7 takes the
            # subnet's first host when no gateway is named
            first = given.network.network_address + 1
            gateway = str(given.ip if key == "subnet" else first)
        dnn, dev = entry.get("dnn"), entry.get("dev")
        dnn = dnn if isinstance(dnn, str) else None
        dev = dev if isinstance(dev, str) else DEFAULT_TUN
        pools.append(UePool(given.network, gateway, dnn, dev, place))
    return pools, layout


def _layout(*found: str | None) -> str:
    said = {f for f in found if f is not None}
    return "2.7" if said == {"2.7"} else ("before 2.7" if said else "unknown")


def parse_upf_file(path: Path, text: str | None = None) -> UpfFile:
    """An Open5GS upf.yaml (its text, when given, instead of reading it)."""
    doc, text = _read(path, text)
    upf = _section(doc, path, "upf")
    reader = _Reader(path, text)
    pfcp, pfcp_layout = _servers(reader, upf.get("pfcp"), ("upf", "pfcp"))
    gtpu, gtpu_layout = _servers(reader, upf.get("gtpu"), ("upf", "gtpu"))
    pools, pools_layout = _pools(reader, upf, "upf")
    return UpfFile(
        path,
        _layout(pfcp_layout, gtpu_layout, pools_layout),
        tuple(pfcp),
        tuple(gtpu),
        tuple(pools),
    )


def parse_smf_file(path: Path, text: str | None = None) -> SmfFile:
    """An Open5GS smf.yaml: its metrics server, S-NSSAIs and UE pools."""
    doc, text = _read(path, text)
    smf = _section(doc, path, "smf")
    reader = _Reader(path, text)
    metrics, metrics_layout = _servers(reader, smf.get("metrics"), ("smf", "metrics"), True)
    metrics = [
        m if m.port is not None else Endpoint(m.address, m.dev, DEFAULT_METRICS_PORT, m.where)
        for m in metrics
    ]
    pools, pools_layout = _pools(reader, smf, "smf")
    snssais: list[ServedSnssai] = []
    for i, info in enumerate(_as_list(smf.get("info"))):
        if not isinstance(info, dict):
            continue
        for j, entry in enumerate(_as_list(info.get("s_nssai"))):
            if not isinstance(entry, dict):
                continue
            place = reader.where(("smf", "info", i, "s_nssai", j))
            try:
                sst = int(entry["sst"])
                sd = int(entry["sd"], 16) if isinstance(entry.get("sd"), str) else None
            except (KeyError, TypeError, ValueError):
                raise Open5gsFileError(
                    f"{path}: {place}: an S-NSSAI needs sst (a number) and an optional sd (hex)"
                ) from None
            dnns = tuple(str(d) for d in _as_list(entry.get("dnn")))
            snssais.append(ServedSnssai(sst, sd, dnns, place))
    return SmfFile(
        path, _layout(metrics_layout, pools_layout), tuple(metrics), tuple(snssais), tuple(pools)
    )
