"""Network namespaces, veth links and program attachment, with teardown that
always runs. Used by the tests, the demo and the testbed.

A Topology records everything it creates and removes it on exit, in reverse
order, even when the body raised; removing a namespace also removes the links
and programs inside it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute, NetlinkError, netns

from sauron.host.namespace_ref import namespace_file

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
#: clsact's two hooks, as parents of a filter
TC_PARENTS = {"ingress": "ffff:fff2", "egress": "ffff:fff3"}
#: our filters' priority on clsact: fixed, so that detaching removes ours
#: and nobody else's; low, so that ours run first (they pass every frame on
#: to the next filter)
TC_PRIORITY = 7
NLM_EEXIST = 17


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


@contextmanager
def inside(ns: str | None) -> Iterator[None]:
    """Runs the body with this thread in namespace `ns`: a name under
    /var/run/netns or a namespace file's path (None: stay). Sockets opened
    inside keep the namespace after the body returns."""
    if ns is None:
        yield
        return
    home = os.open(namespace_file(None), os.O_RDONLY)
    try:
        target = os.open(namespace_file(ns), os.O_RDONLY)
    except OSError:
        os.close(home)
        raise
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def _ipr(ns: str | None) -> IPRoute:
    with inside(ns):
        return IPRoute()


def link_index(ns: str | None, ifname: str) -> int:
    with _ipr(ns) as ipr:
        found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise LookupError(f"no link {ifname!r} in namespace {ns or '(host)'}")
    return int(found[0])


def link_facts(ns: str | None, ifname: str) -> tuple[int, str | None]:
    """A link's hardware type (ARPHRD_*) and its kind (veth, tun, gtp, ...;
    None for a physical NIC)."""
    with _ipr(ns) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise LookupError(f"no link {ifname!r} in namespace {ns or '(host)'}")
        msg = ipr.get_links(found[0])[0]
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    return int(msg["ifi_type"]), kind


@dataclass
class Attachment:
    ns: str | None
    ifname: str
    hook: str  # "xdp", "clsact" (the qdisc this object added) or "tc-ingress"/"tc-egress"
    flags: int = 0


@dataclass
class Attachments:
    """Programs attached to links (in a namespace, or the host's with ns
    None), detached together, last first."""

    attachments: list[Attachment] = field(default_factory=list)

    def attach_xdp(self, ns: str | None, ifname: str, program: Any, generic: bool = True) -> None:
        """Attaches an XDP program (bcc function); generic (SKB) mode by
        default, the mode every driver has."""
        import bcc

        flags = XDP_FLAGS_SKB_MODE if generic else XDP_FLAGS_DRV_MODE
        with inside(ns):
            bcc.BPF.attach_xdp(ifname.encode(), program, flags)
        self.attachments.append(Attachment(ns, ifname, "xdp", flags))

    def attach_tc_egress(self, ns: str | None, ifname: str, program: Any) -> None:
        """A direct-action BPF filter on clsact's egress hook."""
        self.attach_tc(ns, ifname, program, "egress")

    def attach_tc_ingress(self, ns: str | None, ifname: str, program: Any) -> None:
        """A direct-action BPF filter on clsact's ingress hook: before the
        stack, after the skb exists, no head reallocated."""
        self.attach_tc(ns, ifname, program, "ingress")

    def attach_tc(self, ns: str | None, ifname: str, program: Any, side: str) -> None:
        """A direct-action BPF filter on one side of the link's clsact qdisc,
        added when missing (and then removed with the last of ours); a clsact
        some other tool owns keeps its own filters."""
        with _ipr(ns) as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            try:
                ipr.tc("add", "clsact", idx)
            except NetlinkError as exc:
                if exc.code != NLM_EEXIST:
                    raise
            else:
                self.attachments.append(Attachment(ns, ifname, "clsact"))
            ipr.tc(
                "add-filter",
                "bpf",
                idx,
                ":1",
                fd=program.fd,
                name=program.name,
                parent=TC_PARENTS[side],
                prio=TC_PRIORITY,
                classid=1,
                direct_action=True,
            )
        self.attachments.append(Attachment(ns, ifname, f"tc-{side}"))

    def detach_all(self) -> None:
        import bcc

        while self.attachments:
            att = self.attachments.pop()
            try:
                if att.hook == "xdp":
                    with inside(att.ns):
                        bcc.BPF.remove_xdp(att.ifname.encode(), att.flags)
                elif att.hook == "clsact":
                    with _ipr(att.ns) as ipr:
                        ipr.tc("del", "clsact", ipr.link_lookup(ifname=att.ifname)[0])
                else:
                    side = att.hook.removeprefix("tc-")
                    with _ipr(att.ns) as ipr:
                        idx = ipr.link_lookup(ifname=att.ifname)[0]
                        ipr.tc(
                            "del-filter",
                            "bpf",
                            idx,
                            ":1",
                            parent=TC_PARENTS[side],
                            prio=TC_PRIORITY,
                        )
            except Exception as exc:  # the namespace removal below still cleans up
                log.warning("detach failed", extra={"ifname": att.ifname, "error": str(exc)})

    def __enter__(self) -> Attachments:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach_all()


@dataclass
class Topology(Attachments):
    """Namespaces and veth pairs built for one use, torn down as one, with
    the programs attached inside them."""

    prefix: str = field(default_factory=lambda: "sr" + secrets.token_hex(3))
    namespaces: list[str] = field(default_factory=list)

    def namespace(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        netns.create(name)
        self.namespaces.append(name)
        with _ipr(name) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        return name

    def veth(
        self,
        ns_a: str,
        if_a: str,
        addr_a: str,
        ns_b: str,
        if_b: str,
        addr_b: str,
        mac_a: str | None = None,
        mac_b: str | None = None,
    ) -> None:
        """A veth pair with one end in each namespace, addressed and up.
        Addresses are "a.b.c.d/len" or IPv6 "x::y/len"."""
        tmp_a = f"{self.prefix}a{len(self.attachments)}{secrets.token_hex(2)}"[:15]
        tmp_b = f"{self.prefix}b{len(self.attachments)}{secrets.token_hex(2)}"[:15]
        with IPRoute() as ipr:
            ipr.link("add", ifname=tmp_a, kind="veth", peer=tmp_b)
            ipr.link("set", index=ipr.link_lookup(ifname=tmp_a)[0], net_ns_fd=ns_a)
            ipr.link("set", index=ipr.link_lookup(ifname=tmp_b)[0], net_ns_fd=ns_b)
        for ns, tmp, name, addr, mac in (
            (ns_a, tmp_a, if_a, addr_a, mac_a),
            (ns_b, tmp_b, if_b, addr_b, mac_b),
        ):
            with _ipr(ns) as ipr:
                idx = ipr.link_lookup(ifname=tmp)[0]
                ipr.link("set", index=idx, ifname=name)
                if mac:
                    ipr.link("set", index=idx, address=mac)
                ip, plen = addr.split("/")
                ipr.addr("add", index=idx, address=ip, prefixlen=int(plen))
                ipr.link("set", index=idx, state="up")

    def route(self, ns: str, dst: str, gateway: str) -> None:
        with _ipr(ns) as ipr:
            ipr.route("add", dst=dst, gateway=gateway)

    def teardown(self) -> None:
        self.detach_all()
        while self.namespaces:
            name = self.namespaces.pop()
            try:
                netns.remove(name)
            except Exception as exc:
                log.warning("namespace removal failed", extra={"ns": name, "error": str(exc)})

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def leftover_namespaces(prefix: str = "sr") -> list[str]:
    """Namespaces whose name starts with the prefix Topology uses."""
    return sorted(name for name in netns.listnetns() if name.startswith(prefix))
