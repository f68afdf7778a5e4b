"""Attaching the data-plane programs to interfaces by their reference point:
GTP-U sides (N3, N9) get the N3 programs, the data-network side (N6) the N6
ones; XDP or TC on ingress, TC on egress, each through a link the kernel
manages (sauron.bpf.links: tcx for TC). The UPF's own TUN or GTP device
is the N6 side seen from the UPF: what it receives the UPF sent, so its
hooks take the opposite points, and its frames start at IP. The receiving
side's hook is chosen per link (sauron.bpf.ingress_hooks)."""

from __future__ import annotations

import logging
from pathlib import Path

from sauron.abi import layout
from sauron.agent.config import AgentConfig, ConfigError, InterfaceConfig
from sauron.bpf import ingress_hooks, libbpf
from sauron.bpf.link_calls import TCX_EGRESS, TCX_INGRESS, XDP
from sauron.bpf.links import HookTaken, Links
from sauron.bpf.loader import ETHERNET, TC, UPF_DEVICE, DataPathControl
from sauron.host.namespace_ref import namespace_identity
from sauron.host.netns import link_facts, link_index

log = logging.getLogger(__name__)

#: (the point seen on what the link receives, the point on what it sends)
#: by role and link
POINTS: dict[tuple[str, str], tuple[int, int]] = {
    ("n3", ETHERNET): (layout.POINT_N3_INGRESS, layout.POINT_N3_EGRESS),
    ("n9", ETHERNET): (layout.POINT_N3_INGRESS, layout.POINT_N3_EGRESS),
    ("n6", ETHERNET): (layout.POINT_N6_INGRESS, layout.POINT_N6_EGRESS),
    ("n6", UPF_DEVICE): (layout.POINT_N6_EGRESS, layout.POINT_N6_INGRESS),
}

# hardware types (if_arp.h)
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772  # carries a zeroed Ethernet header
ARPHRD_RAWIP = 519
ARPHRD_NONE = 0xFFFE
WITH_ETHERNET_HEADER = frozenset({ARPHRD_ETHER, ARPHRD_LOOPBACK})
BARE_IP = frozenset({ARPHRD_NONE, ARPHRD_RAWIP})
#: link kinds a UPF keeps for its decapsulated side
UPF_DEVICE_KINDS = frozenset({"tun", "gtp", "gtp5g"})


def link_of(itf: InterfaceConfig) -> str:
    """The link the interface is: the configured one, checked against the
    link itself, or the one read from it. LookupError or ValueError say why
    it cannot be watched."""
    hw_type, kind = link_facts(itf.netns, itf.name)
    described = f"{itf.name} is a {kind or 'network'} link of hardware type {hw_type}"
    if hw_type in WITH_ETHERNET_HEADER:
        if itf.link == UPF_DEVICE:
            raise ValueError(f"{described}, with an Ethernet header: a upf_device has none")
        return ETHERNET
    if hw_type not in BARE_IP:
        raise ValueError(f"{described}: neither Ethernet nor bare IP, which Sauron parses")
    if itf.link == ETHERNET:
        raise ValueError(f"{described}, without an Ethernet header: set link upf_device or auto")
    if itf.link == "auto" and kind not in UPF_DEVICE_KINDS:
        raise ValueError(
            f"{described}, bare IP but not a UPF's TUN or GTP device: set link upf_device "
            "if the UPF reads and writes it"
        )
    if itf.role != "n6":
        raise ValueError(
            f"{described}, the UPF's decapsulated side: its role is n6, not {itf.role}"
        )
    return UPF_DEVICE


def resolve_links(config: AgentConfig, source: Path) -> AgentConfig:
    """The configuration with every interface's link read from the system
    (namespaces already resolved); every interface that cannot be watched
    is named in one error."""
    problems: list[str] = []
    interfaces = []
    for i, itf in enumerate(config.interfaces):
        try:
            interfaces.append(itf.model_copy(update={"link": link_of(itf)}))
        except LookupError as exc:
            problems.append(f"field interfaces.{i}.name: {exc.args[0]}")
        except ValueError as exc:
            problems.append(f"field interfaces.{i}.link: {exc}")
    if problems:
        raise ConfigError(source, problems)
    return config.model_copy(update={"interfaces": interfaces})


def attach_interfaces(
    dp: DataPathControl, interfaces: list[InterfaceConfig], into: Links
) -> dict[str, str]:
    """Attaches every configured interface, reading a link left at auto from
    the system; `into` records them so one detach_all() undoes everything,
    also after a failure half way. Returns the ingress hook each interface
    got, by name."""
    hooks: dict[str, str] = {}
    for itf in interfaces:
        link = link_of(itf) if itf.link == "auto" else itf.link
        receive_point, send_point = POINTS[(itf.role, link)]
        hook = attach_receiving_side(dp, itf, link, receive_point, into)
        hooks[itf.name] = hook
        if itf.tc_egress:
            prog_fd = dp.program_fd(send_point, link, TC)
            if not keep_adopted(into, itf.netns, itf.name, TCX_EGRESS, prog_fd):
                into.attach_tcx(itf.netns, itf.name, prog_fd, "egress")
        log.info(
            "attached",
            extra={
                "interface": itf.name,
                "netns": itf.netns,
                "role": itf.role,
                "ingress": hook,
                "egress": "tc" if itf.tc_egress else "none",
            },
        )
    return hooks


def receiving_links(interfaces: list[InterfaceConfig]) -> set[tuple[int, int]]:
    """(namespace inode, interface index) of every link whose received
    packets Sauron's programs handle: how the energy probe tells them from
    the node's other traffic."""
    return {
        (namespace_identity(itf.netns)[1], link_index(itf.netns, itf.name)) for itf in interfaces
    }


def attach_receiving_side(
    dp: DataPathControl, itf: InterfaceConfig, link: str, point: int, into: Links
) -> str:
    """The program for what the link receives, on the hook the interface
    asks for (under auto: the first of ingress_hooks.candidates the driver
    takes, and not another tool's XDP program holds); the hook it went on.
    An XDP hook another program holds is never taken from it: HookTaken
    when XDP was asked for by name."""
    _, kind = link_facts(itf.netns, itf.name)
    tried = ingress_hooks.candidates(itf.ingress, kind)
    # a hook an earlier agent's pinned link holds comes first: adopted, never
    # doubled by a second program on another hook
    held = [h for h in tried if into.find(itf.netns, itf.name, LINK_HOOKS[h]) is not None]
    tried = (*held, *(h for h in tried if h not in held))
    for hook in tried:
        try:
            prog_fd = dp.program_fd(point, link, ingress_hooks.program_type(hook))
            attach_on_hook(into, itf.netns, itf.name, hook, prog_fd)
        except HookTaken as exc:
            if ingress_hooks.TC not in tried[tried.index(hook) + 1 :]:
                raise
            log.warning(
                "XDP hook held by another program, using TC ingress",
                extra={
                    "interface": itf.name,
                    "hook": hook,
                    "program": exc.prog_name,
                    "program_id": exc.prog_id,
                },
            )
            continue
        except Exception as exc:  # bcc, libbpf and pyroute2 raise plain exceptions
            if hook == tried[-1]:
                raise RuntimeError(
                    f"interface {itf.name}: ingress {hook} could not attach: {exc}"
                ) from exc
            log.info(
                "ingress hook refused, trying the next",
                extra={"interface": itf.name, "hook": hook, "error": str(exc)},
            )
            continue
        return hook
    raise AssertionError("candidates is never empty, and ends with a hook that raises")


def attach_on_hook(into: Links, ns: str | None, ifname: str, hook: str, prog_fd: int) -> None:
    """A program (of ingress_hooks.program_type(hook), by descriptor) on the
    receiving side of a link, on `hook`; a link adopted there is kept."""
    if keep_adopted(into, ns, ifname, LINK_HOOKS[hook], prog_fd):
        return
    if hook == ingress_hooks.TC:
        into.attach_tcx(ns, ifname, prog_fd, "ingress")
    else:
        into.attach_xdp(ns, ifname, prog_fd, generic=hook == ingress_hooks.XDP_GENERIC)


#: the link hook each ingress hook is held by
LINK_HOOKS = {
    ingress_hooks.TC: TCX_INGRESS,
    ingress_hooks.XDP_GENERIC: XDP,
    ingress_hooks.XDP_NATIVE: XDP,
}


def keep_adopted(into: Links, ns: str | None, ifname: str, hook: str, prog_fd: int) -> bool:
    """True when `into` holds a link (adopted from an earlier agent's pins)
    on that hook: kept, its program replaced at once when it runs another
    (an upgrade: no frame meets the hook without a program)."""
    link = into.find(ns, ifname, hook)
    if link is None:
        return False
    if link.info.prog_id != libbpf.program_id(prog_fd):
        old = link.prog_name
        into.update(link, prog_fd)
        log.info(
            "program replaced on an adopted link",
            extra={"interface": ifname, "hook": hook, "old": old, "new": link.prog_name},
        )
    return True
