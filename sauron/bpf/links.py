"""Programs attached through links the kernel manages (bpf_link): XDP, and
TC through tcx, the kernel's multi-program TC hooks.

A link is the attachment as a kernel object: it belongs to whoever holds
its descriptor or its pin under bpffs, and the kernel keeps it apart from
everybody else's attachments:

- XDP: a link never replaces a program attached by another tool; the kernel
  answers EBUSY (EEXIST across generic and native mode) and Sauron says
  which program holds the hook (HookTaken). Nothing else can replace the
  link either, and detaching it leaves the hook empty, as it was.
- tcx: the hook runs a list of programs, then the clsact filters of the
  legacy TC path. Sauron's programs go first on the list (BPF_F_BEFORE with
  no program named: the head): they see every frame before another tool's
  program may drop it, as the former filter at priority 7 did, and they
  return TC_ACT_UNSPEC (TCX_NEXT), so whatever follows runs as if Sauron
  were not there. No qdisc is added, none is removed.

A kernel before 6.6 has no tcx: there, TC programs go on as they used to,
a direct-action filter at Sauron's priority on the link's clsact qdisc
(added when missing, removed at detach only when this process added it and
nothing else is left on it). A filter of Sauron's already there (an agent
killed or stopped with keep) is replaced in one step, so counting goes on;
the kernel holds a filter's program, so it counts on after the agent too,
but no pin names it.

With a pin folder, each link is pinned there as it is made
(`n3@4026532:tcx-ingress`: interface, namespace inode, hook), and outlives
the process: an agent that dies leaves its programs counting, and the next
one adopts the pins (Links.adopt) to detach them or swap their programs
(Links.update, atomic: no frame goes without a program).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pyroute2 import IPRoute, NetlinkError

from sauron.bpf import libbpf
from sauron.bpf.link_calls import (
    ATTACH_TYPES,
    BPF_F_BEFORE,
    BPF_TCX_INGRESS,
    TCX_EGRESS,
    TCX_HOOKS,
    TCX_INGRESS,
    XDP,
    LinkInfo,
    link_create,
    link_detach,
    link_info,
    link_update,
    prog_query,
    program_name,
    xdp_query,
)
from sauron.host.namespace_ref import namespace_identity
from sauron.host.netns import (
    TC_PARENTS,
    TC_PRIORITY,
    XDP_FLAGS_DRV_MODE,
    XDP_FLAGS_SKB_MODE,
    inside,
    link_index,
)

log = logging.getLogger(__name__)

#: where TC programs go on a kernel without tcx (before 6.6): clsact filters
CLSACT_HOOKS = {"ingress": "tc-ingress", "egress": "tc-egress"}
#: Sauron's programs are named so on every hook (the kernel keeps 15 bytes)
PROGRAM_PREFIX = "sauron_"
#: what readlink says of a link's descriptor
LINK_INODE = "anon_inode:bpf-link"


class HookTaken(RuntimeError):
    """Another tool's program holds the hook; Sauron leaves it alone."""

    def __init__(
        self, ifname: str, ns: str | None, hook: str, prog_id: int, prog_name: str
    ) -> None:
        self.ifname, self.ns, self.hook = ifname, ns, hook
        self.prog_id, self.prog_name = prog_id, prog_name
        super().__init__(
            f"interface {ifname} in namespace {ns or '(host)'}: the XDP hook holds another "
            f"program, {prog_name or '(no name)'} (id {prog_id}), and Sauron never replaces or "
            "detaches a program it did not attach: set `ingress: tc` for this interface "
            "(Sauron then uses TC ingress and leaves the XDP program alone)"
        )


class PinTaken(FileExistsError):
    """A pin of that name exists: a link of an earlier run, to adopt first."""


@cache
def tcx_available() -> bool:
    """Whether the kernel has tcx (6.6 and later): it knows the attach type
    when asked which programs the loopback's tcx ingress runs."""
    try:
        prog_query(link_index(None, "lo"), BPF_TCX_INGRESS)
    except libbpf.BpfError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    return True


def _filter_at_our_priority(ipr: IPRoute, ifindex: int, side: str) -> str | None:
    """The name of the BPF filter at Sauron's priority on a clsact hook
    ("" for one of no name); None when there is none."""
    parent = int(TC_PARENTS[side].replace(":", ""), 16)
    for msg in ipr.get_filters(index=ifindex, parent=parent):
        options = msg.get_attr("TCA_OPTIONS")
        if int(msg["info"]) >> 16 != TC_PRIORITY or options is None:
            continue  # another priority, or the head of a filter chain
        return str(options.get_attr("TCA_BPF_NAME") or "")
    return None


def _remove_clsact_filter(link: Link) -> None:
    """Removes Sauron's filter (its priority) from the hook; the qdisc too
    when this process added it and no other filter is left on it."""
    side = link.hook.removeprefix("tc-")
    try:
        with inside(link.ns):
            ipr = IPRoute()
        with ipr:
            ifindex = link_index(link.ns, link.ifname)
            ipr.tc("del-filter", "bpf", ifindex, ":1", parent=TC_PARENTS[side], prio=TC_PRIORITY)
            left = [
                f
                for parent in TC_PARENTS.values()
                for f in ipr.get_filters(index=ifindex, parent=int(parent.replace(":", ""), 16))
                if f.get_attr("TCA_KIND")
            ]
            if link.owns_qdisc and not left:
                ipr.tc("del", "clsact", ifindex)
    except (NetlinkError, OSError, LookupError) as exc:
        log.warning(
            "clsact filter removal failed", extra={"interface": link.ifname, "error": str(exc)}
        )


# ---- links held ------------------------------------------------------------


def pin_name(ifname: str, netns: int, hook: str) -> str:
    """`n3@4026532:tcx-ingress`: the interface, its namespace's inode, the
    hook. bpffs refuses a dot in a name (EPERM), and an interface's name may
    hold one (a VLAN's, eth0.100): it is written as a colon, which no
    interface's name holds."""
    return f"{ifname.replace('.', ':')}@{netns}:{hook}"


def parse_pin_name(name: str) -> tuple[str, int, str] | None:
    """(interface, namespace inode, hook) of a pin's name; None for a file
    of some other name."""
    ifname, at, rest = name.rpartition("@")
    inode, colon, hook = rest.partition(":")
    if not (ifname and at and colon and inode.isdigit() and hook in ATTACH_TYPES):
        return None
    return ifname.replace(":", "."), int(inode), hook


@dataclass
class Link:
    """One link held by its descriptor: where it is and what it runs (fd
    -1: a clsact filter, on a kernel without tcx)."""

    fd: int
    ifname: str
    #: the inode of the interface's namespace
    netns: int
    hook: str
    #: where it is pinned; None: it lives as long as the descriptor
    pin: Path | None
    info: LinkInfo
    prog_name: str = ""
    #: a clsact filter's namespace, and whether this process added its qdisc
    ns: str | None = None
    owns_qdisc: bool = False


@dataclass(frozen=True)
class PinnedLink:
    """A link pinned in a folder, as found there."""

    path: Path
    ifname: str
    netns: int
    hook: str
    info: LinkInfo
    prog_name: str


def _is_link(fd: int) -> bool:
    return os.readlink(f"/proc/self/fd/{fd}") == LINK_INODE


def _open_pin(path: Path) -> Link | None:
    """The pinned link at `path`, opened; None (and a warning) for a file
    that is no link Sauron pins."""
    parsed = parse_pin_name(path.name)
    if parsed is None:
        log.warning("not a link pin of Sauron's, left alone", extra={"path": str(path)})
        return None
    fd = libbpf.obj_get(str(path))
    try:
        if not _is_link(fd):
            raise ValueError("not a link")
        info = link_info(fd)
    except (OSError, ValueError) as exc:
        os.close(fd)
        log.warning("pin holds no link, left alone", extra={"path": str(path), "error": str(exc)})
        return None
    ifname, netns, hook = parsed
    return Link(fd, ifname, netns, hook, path, info, program_name(info.prog_id))


def pinned_links(folder: Path) -> list[PinnedLink]:
    """The links pinned in a folder and what each holds, read without
    keeping them open (to hold them: Links.adopt)."""
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        link = _open_pin(path)
        if link is None:
            continue
        os.close(link.fd)
        found.append(
            PinnedLink(path, link.ifname, link.netns, link.hook, link.info, link.prog_name)
        )
    return found


@dataclass
class Links:
    """Programs attached through links, detached together (last first).

    With pin_dir, every link is pinned there as it is made and outlives the
    process until detach_all() (keep() lets go of the descriptors and leaves
    the pinned links attached). The folder must lie on bpffs (/sys/fs/bpf)."""

    pin_dir: Path | None = None
    links: list[Link] = field(default_factory=list)

    def attach_xdp(self, ns: str | None, ifname: str, prog_fd: int, generic: bool = True) -> Link:
        """An XDP program on the interface, generic (SKB) mode by default,
        the mode every driver has. HookTaken when another program holds the
        hook, in either mode: it is never replaced."""
        flags = XDP_FLAGS_SKB_MODE if generic else XDP_FLAGS_DRV_MODE
        try:
            return self._attach(ns, ifname, prog_fd, XDP, flags)
        except libbpf.BpfError as exc:
            if exc.errno not in (errno.EBUSY, errno.EEXIST):
                raise
            ifindex = link_index(ns, ifname)
            with inside(ns):
                taken = xdp_query(ifindex).prog_ids()
            if not taken:
                raise
            raise HookTaken(ifname, ns, XDP, taken[0], program_name(taken[0])) from exc

    def attach_tcx(self, ns: str | None, ifname: str, prog_fd: int, side: str) -> Link:
        """A TC program at the head of the interface's tcx ingress or egress
        hook, before other tools' tcx programs and every clsact filter; on a
        kernel without tcx, a clsact filter at Sauron's priority."""
        if not tcx_available():
            return self._attach_clsact(ns, ifname, prog_fd, side)
        return self._attach(ns, ifname, prog_fd, TCX_HOOKS[side], BPF_F_BEFORE)

    def _attach_clsact(self, ns: str | None, ifname: str, prog_fd: int, side: str) -> Link:
        netns, ifindex = namespace_identity(ns)[1], link_index(ns, ifname)
        prog_id = libbpf.program_id(prog_fd)
        name = program_name(prog_id)
        with inside(ns):
            ipr = IPRoute()
        added = False
        with ipr:
            try:
                ipr.tc("add", "clsact", ifindex)
                added = True
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            held = _filter_at_our_priority(ipr, ifindex, side)
            if held is not None and not held.startswith(PROGRAM_PREFIX):
                raise RuntimeError(
                    f"interface {ifname} in namespace {ns or '(host)'}: this kernel has no tcx, "
                    f"and another tool's filter {held or '(no name)'} holds clsact {side} "
                    f"priority {TC_PRIORITY}, which Sauron uses there; Sauron never replaces it"
                )
            ipr.tc(
                "replace-filter" if held is not None else "add-filter",
                "bpf",
                ifindex,
                ":1",
                fd=prog_fd,
                name=name,
                parent=TC_PARENTS[side],
                prio=TC_PRIORITY,
                classid=1,
                direct_action=True,
            )
        hook = CLSACT_HOOKS[side]
        link = Link(-1, ifname, netns, hook, None, LinkInfo(0, 0, prog_id, ifindex, hook), name)
        link.ns, link.owns_qdisc = ns, added
        self.links.append(link)
        log.info(
            "no tcx on this kernel: a clsact filter",
            extra={"interface": ifname, "hook": hook, "program": name},
        )
        return link

    def _attach(self, ns: str | None, ifname: str, prog_fd: int, hook: str, flags: int) -> Link:
        netns = namespace_identity(ns)[1]
        pin = None
        if self.pin_dir is not None:
            pin = self.pin_dir / pin_name(ifname, netns, hook)
            if os.path.lexists(pin):
                raise PinTaken(
                    errno.EEXIST,
                    f"{pin} exists: a link of an earlier run holds {ifname}'s {hook} hook "
                    "(adopt it, or detach it, before attaching again)",
                )
        ifindex = link_index(ns, ifname)
        with inside(ns):
            try:
                fd = link_create(prog_fd, ifindex, ATTACH_TYPES[hook], flags)
            except libbpf.BpfError as exc:
                raise libbpf.BpfError(
                    exc.errno,
                    f"interface {ifname} in namespace {ns or '(host)'}: {hook}: {exc.strerror}",
                ) from exc
        try:
            if pin is not None:
                pin.parent.mkdir(parents=True, exist_ok=True)
                libbpf.obj_pin(fd, str(pin))
            info = link_info(fd)
        except BaseException:
            os.close(fd)  # the only reference: the program leaves the hook with it
            if pin is not None and os.path.lexists(pin):
                pin.unlink()
            raise
        link = Link(fd, ifname, netns, hook, pin, info, program_name(info.prog_id))
        self.links.append(link)
        log.debug(
            "link made",
            extra={"interface": ifname, "hook": hook, "link": info.link_id, "pin": str(pin)},
        )
        return link

    def find(self, ns: str | None, ifname: str, hook: str) -> Link | None:
        """The link held on that interface's hook, made here or adopted."""
        netns = namespace_identity(ns)[1]
        for link in self.links:
            if (link.netns, link.ifname, link.hook) == (netns, ifname, hook):
                return link
        return None

    def update(self, link: Link, prog_fd: int, expected_prog_fd: int | None = None) -> Link:
        """Replaces the program of a link held here, at once: the link, its
        id and its pin stay. With expected_prog_fd, only if that program is
        the one attached."""
        if not any(held is link for held in self.links):
            raise ValueError(f"link {link.info.link_id} is not held here")
        link_update(link.fd, prog_fd, expected_prog_fd)
        link.info = link_info(link.fd)
        link.prog_name = program_name(link.info.prog_id)
        return link

    def adopt(self, pin_dir: Path | None = None) -> list[Link]:
        """Opens every link pinned in the folder (this object's pin_dir by
        default) and holds it, so that detach_all() removes it or update()
        swaps its program. A pin whose interface is gone is held too: it is
        defunct (info.ifindex 0) and detach_all() removes its pin."""
        folder = pin_dir or self.pin_dir
        if folder is None:
            raise ValueError("no folder to adopt pinned links from")
        adopted = []
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if any(link.pin == path for link in self.links):
                continue
            link = _open_pin(path)
            if link is not None:
                self.links.append(link)
                adopted.append(link)
        return adopted

    def keep(self) -> None:
        """Lets go of every descriptor: pinned links stay attached (their
        programs keep counting with no process), the others are detached by
        the kernel as their descriptor closes; clsact filters stay."""
        while self.links:
            link = self.links.pop()
            if link.fd < 0:
                continue  # a clsact filter: the kernel holds it
            if link.pin is None:
                log.warning(
                    "not pinned: detached as its descriptor closes",
                    extra={"interface": link.ifname, "hook": link.hook},
                )
            os.close(link.fd)

    def detach_all(self) -> None:
        """Unpins and detaches every link held, last first; a failure is
        logged and the rest still go."""
        while self.links:
            self.detach(self.links[-1])

    def detach(self, link: Link) -> None:
        """Unpins and detaches one link held here (a clsact filter: removed);
        a failure is logged."""
        self.links.remove(link)
        if link.fd < 0:
            _remove_clsact_filter(link)
            return
        try:
            if link.pin is not None:
                link.pin.unlink(missing_ok=True)
            link_detach(link.fd)
        except OSError as exc:
            extra = {"interface": link.ifname, "hook": link.hook, "link": link.info.link_id}
            log.warning("detach failed", extra={**extra, "error": str(exc)})
        finally:
            os.close(link.fd)

    def attachments(self) -> list[tuple[Link, bool | None]]:
        """Each held link and whether the kernel still has it on its
        interface: the link of an interface that was deleted (a UPF that
        restarted and made its TUN device anew) is defunct, its ifindex 0,
        and its program sees nothing any more. None for a clsact filter,
        which no descriptor tells of."""
        out: list[tuple[Link, bool | None]] = []
        for link in self.links:
            if link.fd < 0:
                out.append((link, None))
                continue
            try:
                out.append((link, link_info(link.fd).ifindex != 0))
            except OSError:
                out.append((link, False))
        return out

    def __enter__(self) -> Links:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach_all()


# ---- leftovers -------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    """A program of Sauron's on an interface's hook that no pin explains."""

    #: xdp, tcx-ingress, tcx-egress, or tc-ingress / tc-egress (a clsact filter)
    hook: str
    #: 0 for a clsact filter (netlink names it, the id is not decoded)
    prog_id: int
    prog_name: str


def leftovers(ns: str | None, ifname: str, pinned: Iterable[int] = ()) -> list[Leftover]:
    """Sauron's programs (named sauron_*) on the interface's XDP and tcx
    hooks whose id is not among `pinned` (the program ids of the pinned
    links, pinned_links()), and its filters at Sauron's former clsact
    priority: what an agent killed without pins, or a version that attached
    through netlink, left behind. A running agent without pins shows here
    too: ask while none runs."""
    explained = set(pinned)
    ifindex = link_index(ns, ifname)
    found: list[Leftover] = []
    with inside(ns):
        candidates = [(XDP, i) for i in xdp_query(ifindex).prog_ids()]
        for hook in (TCX_INGRESS, TCX_EGRESS):
            candidates += [(hook, i) for i in prog_query(ifindex, ATTACH_TYPES[hook])]
        ipr = IPRoute()
    for hook, prog_id in candidates:
        name = program_name(prog_id)
        if prog_id not in explained and name.startswith(PROGRAM_PREFIX):
            found.append(Leftover(hook, prog_id, name))
    with ipr:
        for side, parent in TC_PARENTS.items():
            parent_id = int(parent.replace(":", ""), 16)
            for msg in ipr.get_filters(index=ifindex, parent=parent_id):
                options = msg.get_attr("TCA_OPTIONS")
                filter_name = str(options.get_attr("TCA_BPF_NAME") or "") if options else ""
                prio = int(msg["info"]) >> 16  # TC_H_MAJ(info): the filter's priority
                if prio == TC_PRIORITY and filter_name.startswith(PROGRAM_PREFIX):
                    found.append(Leftover(f"tc-{side}", 0, filter_name))
    return found
