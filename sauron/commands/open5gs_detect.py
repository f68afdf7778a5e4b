"""What an Open5GS host offers the agent, found rather than typed: the
UPF's process, namespace and configuration file, the links that carry its
N3 and N4 addresses, its TUN devices and UE pools; the SMF's metrics
server and S-NSSAIs. Every finding says where it came from, every gap
what to fill in; `sauron config init --detect` writes them out."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from sauron.host.namespace_links import Link, carrier_of, links_in
from sauron.host.namespace_ref import NamespaceError, resolve
from sauron.host.nf_processes import NfProcess, find_processes
from sauron.host.open5gs_files import (
    Endpoint,
    Open5gsFileError,
    SmfFile,
    UePool,
    UpfFile,
    parse_smf_file,
    parse_upf_file,
)

UPF_PROCESS = "open5gs-upfd"
SMF_PROCESS = "open5gs-smfd"
DEFAULT_UPF_FILE = Path("/etc/open5gs/upf.yaml")
DEFAULT_SMF_FILE = Path("/etc/open5gs/smf.yaml")
#: ARPHRD_NONE: a TUN device's frames start at IP
ARPHRD_NONE = 0xFFFE


@dataclass
class Entry:
    """One item of a list the configuration holds: its keys, and why."""

    keys: dict[str, str | int]
    why: str


@dataclass
class Gap:
    """Something not found: the commented-out line written for it, and the hint."""

    line: str
    hint: str


@dataclass
class SliceFound:
    name: str
    sst: int
    sd: str | None
    dnns: list[str]
    subnets: list[tuple[str, str]]  # (subnet, why)
    why: str


@dataclass
class Detection:
    node: str
    interfaces: list[Entry] = field(default_factory=list)
    interface_gaps: list[Gap] = field(default_factory=list)
    pfcp: list[Entry] = field(default_factory=list)
    pfcp_gaps: list[Gap] = field(default_factory=list)
    smf: list[Entry] = field(default_factory=list)
    smf_gaps: list[Gap] = field(default_factory=list)
    watch: list[Entry] = field(default_factory=list)
    slices: list[SliceFound] = field(default_factory=list)
    slice_gaps: list[Gap] = field(default_factory=list)
    #: what was found and what was not, in words, for stderr
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class _Upf:
    """One UPF: its process (None: not running, its default file read), file, links."""

    process: NfProcess | None
    file: UpfFile
    netns: str | None
    netns_said: str
    links: dict[str, Link]


def _in_ns(netns: str | None, said: str) -> str:
    return f"in {said}" if netns is not None else "in the host's namespace"


def _ns_keys(netns: str | None) -> dict[str, str | int]:
    return {} if netns is None else {"netns": netns}


def _is_unspecified(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def _carrier(upf: _Upf, endpoint: Endpoint) -> tuple[Link | None, str]:
    """The link an endpoint is on, or why it is not known."""
    if endpoint.dev is not None and endpoint.address is None:
        link = upf.links.get(endpoint.dev)
        return link, "" if link else f"device {endpoint.dev} is not a link there"
    address = endpoint.address or ""
    if _is_unspecified(address):
        return None, f"{address} listens on every link: name the one that carries it"
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None, f"{address!r} is a host name: name the link that carries its address"
    link = carrier_of(upf.links, address)
    return link, "" if link else f"no link {_in_ns(upf.netns, upf.netns_said)} holds {address}"


def _read_upfs(found: Detection) -> list[_Upf]:
    processes = find_processes(UPF_PROCESS, DEFAULT_UPF_FILE, found.missing)
    targets: list[tuple[NfProcess | None, Path, str | None, str]] = [
        (p, p.readable_config, p.netns, p.netns_said) for p in processes
    ]
    if not processes:
        found.missing.append(
            f"no {UPF_PROCESS} process runs: looked for its default file {DEFAULT_UPF_FILE}, "
            "links in this namespace"
        )
        if DEFAULT_UPF_FILE.exists():
            targets.append((None, DEFAULT_UPF_FILE, None, "the host's namespace"))
        else:
            hint = f"no {UPF_PROCESS} runs here: name the link that carries"
            found.interface_gaps.append(Gap("- {name: LINK, role: n3}", f"{hint} N3 (GTP-U)"))
            found.interface_gaps.append(
                Gap("- {name: ogstun, role: n6, link: upf_device}", f"{hint} its TUN device (N6)")
            )
            found.pfcp_gaps.append(Gap("- {name: LINK}", f"{hint} N4 (PFCP)"))
    upfs: list[_Upf] = []
    for process, path, netns, said in targets:
        if process is not None:
            found.found.append(
                f"{UPF_PROCESS} (pid {process.pid}) {_in_ns(netns, said)}, "
                f"its configuration {process.config} from {process.config_from}"
            )
        try:
            upf_file = parse_upf_file(path)
        except Open5gsFileError as exc:
            found.missing.append(str(exc))
            continue
        shown = process.config if process is not None else path
        upf_file = dataclasses.replace(upf_file, path=shown)
        try:
            links = links_in(resolve(netns))
        except (NamespaceError, OSError) as exc:
            found.missing.append(f"the links of {said}: {exc}")
            continue
        upfs.append(_Upf(process, upf_file, netns, said, links))
    return upfs


def _detect_upf(upf: _Upf, found: Detection) -> None:
    source = upf.file.path
    where_ns = _in_ns(upf.netns, upf.netns_said)
    found.found.append(f"{source}: Open5GS {upf.file.layout} layout")
    for role, endpoints, into, gaps, label in (
        ("n3", upf.file.gtpu, found.interfaces, found.interface_gaps, "N3"),
        (None, upf.file.pfcp, found.pfcp, found.pfcp_gaps, "N4"),
    ):
        if not endpoints:
            hint = f"{source} names no {'GTP-U' if role else 'PFCP'} server"
            found.missing.append(f"{label}: {hint}")
            gaps.append(Gap("- {name: LINK" + (", role: n3}" if role else "}"), hint))
        for endpoint in endpoints:
            link, reason = _carrier(upf, endpoint)
            said = endpoint.address or endpoint.dev
            if link is None:
                found.missing.append(f"{label}: {said} from {source} {endpoint.where}: {reason}")
                gaps.append(
                    Gap(
                        "- {name: LINK" + (", role: n3" if role else "") + "}",
                        f"{label} ({said}, {source} {endpoint.where}): {reason}",
                    )
                )
                continue
            keys: dict[str, str | int] = {"name": link.name}
            if role:
                keys["role"] = role
            keys.update(_ns_keys(upf.netns))
            if any(e.keys == keys for e in into):
                continue
            loopback = " (the loopback: the peer runs on this host)" if link.name == "lo" else ""
            why = f"{label}: {said} on {link.name}{loopback} {where_ns}, from {source} {endpoint.where}"
            into.append(Entry(keys, why))
            found.found.append(why)
    by_device: dict[str, list[UePool]] = {}
    for pool in upf.file.pools:
        by_device.setdefault(pool.dev, []).append(pool)
    if not upf.file.pools:
        found.missing.append(f"N6: {source} names no UE pool (session/subnet)")
    for device, pools in by_device.items():
        described = ", ".join(
            f"UE pool {p.subnet} (gateway {p.gateway}{f', DNN {p.dnn}' if p.dnn else ''}) "
            f"at {p.where}"
            for p in pools
        )
        link = upf.links.get(device)
        if link is None:
            hint = f"N6: the TUN device {device} of {described} in {source} is no link {where_ns}"
            found.missing.append(hint)
            found.interface_gaps.append(
                Gap(f"- {{name: {device}, role: n6, link: upf_device}}", hint + " (is the UPF up?)")
            )
            continue
        n6: dict[str, str | int] = {"name": device, "role": "n6", **_ns_keys(upf.netns)}
        is_tun = link.kind in ("tun", "gtp", "gtp5g") or link.hw_type == ARPHRD_NONE
        if is_tun:
            n6["link"] = "upf_device"
        gateways = [p.gateway for p in pools if link.carries(p.gateway)]
        holds = f", holding {', '.join(gateways)}" if gateways else ""
        kind = f"a {link.kind} device" if link.kind else "a link"
        why = (
            f"N6: {device}, {kind}{holds} {where_ns}: the UPF's own device"
            f"{' (link upf_device)' if is_tun else ''}, for {described} in {source}"
        )
        found.interfaces.append(Entry(n6, why))
        found.found.append(why)
    if not any(w.keys.get("name") == UPF_PROCESS for w in found.watch) and upf.process:
        found.watch.append(
            Entry({"name": UPF_PROCESS}, f"its CPU time counts (pid {upf.process.pid} now)")
        )


def _read_smfs(found: Detection) -> list[tuple[NfProcess | None, SmfFile]]:
    processes = find_processes(SMF_PROCESS, DEFAULT_SMF_FILE, found.missing)
    targets: list[tuple[NfProcess | None, Path]] = [(p, p.readable_config) for p in processes]
    if not processes:
        said = f"no {SMF_PROCESS} process runs"
        if DEFAULT_SMF_FILE.exists():
            targets.append((None, DEFAULT_SMF_FILE))
            found.missing.append(f"{said}: its default file {DEFAULT_SMF_FILE} is read")
        else:
            found.missing.append(f"{said} and there is no {DEFAULT_SMF_FILE}")
            found.smf_gaps.append(
                Gap("- {url: http://SMF:9090}", f"{said}: its metrics server (smf.yaml metrics)")
            )
    smfs: list[tuple[NfProcess | None, SmfFile]] = []
    for process, path in targets:
        try:
            smf_file = parse_smf_file(path)
        except Open5gsFileError as exc:
            found.missing.append(str(exc))
            continue
        shown = process.config if process is not None else path
        smfs.append((process, dataclasses.replace(smf_file, path=shown)))
        if process is not None:
            found.found.append(
                f"{SMF_PROCESS} (pid {process.pid}) {_in_ns(process.netns, process.netns_said)}, "
                f"its configuration {process.config} from {process.config_from}"
            )
    return smfs


def _url(address: str, port: int) -> str:
    try:
        if ipaddress.ip_address(address).version == 6:
            return f"http://[{address}]:{port}"
    except ValueError:
        pass
    return f"http://{address}:{port}"


def _detect_smf(process: NfProcess | None, smf: SmfFile, found: Detection) -> None:
    source = smf.path
    if not smf.metrics:
        hint = (
            f"{source} has no metrics server: add smf.metrics.server "
            "(Open5GS 2.7.7 and later serve the session list there)"
        )
        found.missing.append(f"SMF feed: {hint}")
        found.smf_gaps.append(Gap("- {url: http://SMF:9090}", hint))
    for endpoint in smf.metrics:
        address = endpoint.address or ""
        if not address or _is_unspecified(address):
            address = "127.0.0.1"
        url = _url(address, endpoint.port or 9090)
        where = ""
        if process is not None and process.netns is not None:
            where = f"; the SMF runs in {process.netns_said}: the agent asks from its own"
        why = f"the SMF's metrics server, from {source} {endpoint.where}{where}"
        if not any(e.keys["url"] == url for e in found.smf):
            found.smf.append(Entry({"url": url}, why))
            found.found.append(f"SMF feed: {url}, {why}")
    if process is not None and not any(w.keys.get("name") == SMF_PROCESS for w in found.watch):
        found.watch.append(
            Entry({"name": SMF_PROCESS}, f"its CPU time counts (pid {process.pid} now)")
        )


_SLICE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _slice_name(sst: int, sd: str | None, dnns: list[str], taken: set[str]) -> str:
    for dnn in dnns:
        name = re.sub(r"[^a-z0-9_-]", "-", dnn.lower())[:32]
        if _SLICE_NAME.match(name) and name not in taken:
            return name
    name = f"sst{sst}" + (f"-{sd}" if sd else "")
    while name in taken:
        name += "x"
    return name


def detect_slices(upfs: list[UpfFile], smfs: list[SmfFile], found: Detection) -> None:
    """One slice per S-NSSAI the SMFs serve, with the UE pools whose DNN is
    one of its DNNs (a pool without a DNN when the SMFs serve one S-NSSAI)."""
    snssais: dict[tuple[int, int | None], tuple[list[str], str]] = {}
    for smf in smfs:
        for s in smf.snssais:
            dnns, why = snssais.setdefault((s.sst, s.sd), ([], f"{smf.path} {s.where}"))
            dnns.extend(d for d in s.dnns if d not in dnns)
    pools: dict[str, tuple[str | None, str]] = {}  # subnet -> (DNN, where)
    for path, pool in [(u.path, p) for u in upfs for p in u.pools] + [
        (s.path, p) for s in smfs for p in s.pools
    ]:
        dnn, where = pools.get(str(pool.subnet), (None, f"{path} {pool.where}"))
        pools[str(pool.subnet)] = (dnn or pool.dnn, where)
    if not snssais:
        hint = "no S-NSSAI found (smf.yaml smf.info[].s_nssai): fill in the slice's sst and sd"
        found.missing.append(f"slices: {hint}")
        for subnet, (dnn, where) in pools.items() or {"10.45.0.0/16": (None, "(example)")}.items():
            name = _slice_name(1, None, [dnn] if dnn else [], set())
            found.slice_gaps.append(
                Gap(
                    f"- {{name: {name}, snssai: {{sst: 1}}, ue_subnets: [{subnet}]}}",
                    f"UE pool {subnet} from {where}: {hint}",
                )
            )
        return
    taken: set[str] = set()
    claimed: dict[str, list[tuple[int, int | None]]] = {}
    for subnet, (dnn, _) in pools.items():
        if dnn is None:
            owners = list(snssais) if len(snssais) == 1 else []
        else:
            owners = [key for key, (dnns, _) in snssais.items() if dnn in dnns]
        claimed[subnet] = owners
        if len(owners) != 1:
            why = (
                f"DNN {dnn} is served by {len(owners)} S-NSSAIs"
                if dnn
                else "it names no DNN and the SMF serves several S-NSSAIs"
            )
            found.missing.append(f"slices: UE pool {subnet} belongs to no one slice: {why}")
    for (sst, sd), (dnns, why) in snssais.items():
        sd_hex = None if sd is None else f"{sd:06x}"
        name = _slice_name(sst, sd_hex, dnns, taken)
        taken.add(name)
        subnets = []
        for subnet, owners in claimed.items():
            if owners == [(sst, sd)]:
                dnn, where = pools[subnet]
                reason = f"DNN {dnn}" if dnn else "no DNN named; the only S-NSSAI served"
                subnets.append((subnet, f"{where} ({reason})"))
        found.slices.append(SliceFound(name, sst, sd_hex, dnns, subnets, f"from {why}"))
        found.found.append(
            f"slice {name}: S-NSSAI {sst}{f'-{sd_hex}' if sd_hex else ''}, DNNs "
            f"{', '.join(dnns) or 'none'}, UE pools {', '.join(s for s, _ in subnets) or 'none'}"
        )


def detect() -> Detection:
    """Everything found on this host (as root: other processes' /proc and
    namespaces are read)."""
    found = Detection(node=socket.gethostname() or "upf-1")
    upfs = _read_upfs(found)
    for upf in upfs:
        _detect_upf(upf, found)
    smfs = _read_smfs(found)
    for process, smf in smfs:
        _detect_smf(process, smf, found)
    detect_slices([u.file for u in upfs], [s for _, s in smfs], found)
    return found
