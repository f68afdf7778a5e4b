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

import ctypes
import ctypes.util
import errno
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pyroute2 import IPRoute, NetlinkError

from sauron.bpf import libbpf
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

#: the hooks a link attaches to, as pin names and logs spell them
XDP = "xdp"
TCX_INGRESS = "tcx-ingress"
TCX_EGRESS = "tcx-egress"

# enum bpf_attach_type and enum bpf_link_type (uapi/linux/bpf.h; checked
# against the running kernel's BTF, 6.18)
BPF_XDP = 37
BPF_TCX_INGRESS = 46
BPF_TCX_EGRESS = 47
BPF_LINK_TYPE_XDP = 6
BPF_LINK_TYPE_TCX = 11
ATTACH_TYPES = {XDP: BPF_XDP, TCX_INGRESS: BPF_TCX_INGRESS, TCX_EGRESS: BPF_TCX_EGRESS}
TCX_HOOKS = {"ingress": TCX_INGRESS, "egress": TCX_EGRESS}
#: where TC programs go on a kernel without tcx (before 6.6): clsact filters
CLSACT_HOOKS = {"ingress": "tc-ingress", "egress": "tc-egress"}
#: generic attach flags (uapi/linux/bpf.h): BPF_F_REPLACE on a link update
#: replaces only the program expected; BPF_F_BEFORE with no relative
#: program puts a tcx program at the head of the hook's list
BPF_F_REPLACE = 1 << 2
BPF_F_BEFORE = 1 << 3
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


# ---- libbpf (Debian's libbpf1, 1.1) ---------------------------------------


class _LinkCreateOpts(ctypes.Structure):
    # struct bpf_link_create_opts, libbpf 1.1 (bpf.h). libbpf copies flags
    # into bpf_attr.link_create.flags and zeroes the rest of the attribute,
    # so tcx's relative program and expected revision read as none.
    class _Union(ctypes.Union):
        class _KprobeMulti(ctypes.Structure):
            _fields_ = [
                ("flags", ctypes.c_uint32),
                ("cnt", ctypes.c_uint32),
                ("syms", ctypes.c_void_p),
                ("addrs", ctypes.c_void_p),
                ("cookies", ctypes.c_void_p),
            ]

        _fields_ = [
            ("perf_event_bpf_cookie", ctypes.c_uint64),
            ("kprobe_multi", _KprobeMulti),
            ("tracing_cookie", ctypes.c_uint64),
        ]

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("flags", ctypes.c_uint32),
        ("iter_info", ctypes.c_void_p),
        ("iter_info_len", ctypes.c_uint32),
        ("target_btf_id", ctypes.c_uint32),
        ("u", _Union),
    ]


class _LinkUpdateOpts(ctypes.Structure):
    # struct bpf_link_update_opts, libbpf 1.1 (bpf.h)
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("flags", ctypes.c_uint32),
        ("old_prog_fd", ctypes.c_uint32),
    ]


class _XdpQueryOpts(ctypes.Structure):
    # struct bpf_xdp_query_opts, libbpf 1.1 (libbpf.h; feature_flags came in 1.2)
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_id", ctypes.c_uint32),
        ("drv_prog_id", ctypes.c_uint32),
        ("hw_prog_id", ctypes.c_uint32),
        ("skb_prog_id", ctypes.c_uint32),
        ("attach_mode", ctypes.c_uint8),
    ]


class _LinkInfo(ctypes.Structure):
    # the head of struct bpf_link_info (uapi/linux/bpf.h): the union starts
    # at byte 16; xdp.ifindex, tcx.ifindex and tcx.attach_type lie there
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
        ("ifindex", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("_rest", ctypes.c_uint8 * 40),
    ]


@cache
def _lib() -> ctypes.CDLL:
    """libbpf, a handle of this module's own (its prototypes set here)."""
    lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1", use_errno=True)
    lib.bpf_link_create.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(_LinkCreateOpts),
    ]
    lib.bpf_link_create.restype = ctypes.c_int
    lib.bpf_link_update.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_LinkUpdateOpts)]
    lib.bpf_link_update.restype = ctypes.c_int
    lib.bpf_link_detach.argtypes = [ctypes.c_int]
    lib.bpf_link_detach.restype = ctypes.c_int
    lib.bpf_xdp_query.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_XdpQueryOpts)]
    lib.bpf_xdp_query.restype = ctypes.c_int
    lib.bpf_xdp_query_id.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_uint32)]
    lib.bpf_xdp_query_id.restype = ctypes.c_int
    lib.bpf_prog_query.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_uint32,
        ctypes.POINTER(ctypes.c_uint32),
        ctypes.POINTER(ctypes.c_uint32),
        ctypes.POINTER(ctypes.c_uint32),
    ]
    lib.bpf_prog_query.restype = ctypes.c_int
    lib.bpf_prog_get_fd_by_id.argtypes = [ctypes.c_uint32]
    lib.bpf_prog_get_fd_by_id.restype = ctypes.c_int
    lib.bpf_obj_get_info_by_fd.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_uint32),
    ]
    lib.bpf_obj_get_info_by_fd.restype = ctypes.c_int
    return lib


def _errno(ret: int) -> int:
    return -ret if ret < -1 else ctypes.get_errno() or errno.EIO


def _check(ret: int, what: str) -> int:
    if ret < 0:
        code = _errno(ret)
        raise libbpf.BpfError(code, f"{what}: {os.strerror(code)}")
    return ret


def link_create(prog_fd: int, ifindex: int, attach_type: int, flags: int = 0) -> int:
    """A new link of the program on an interface of the calling thread's
    namespace (BPF_LINK_CREATE); its descriptor, which the caller closes."""
    opts = _LinkCreateOpts(sz=ctypes.sizeof(_LinkCreateOpts), flags=flags)
    ret = int(_lib().bpf_link_create(prog_fd, ifindex, attach_type, ctypes.byref(opts)))
    return _check(ret, f"BPF_LINK_CREATE (ifindex {ifindex}, attach type {attach_type})")


def link_update(link_fd: int, prog_fd: int, expected_prog_fd: int | None = None) -> None:
    """Swaps the link's program at once (BPF_LINK_UPDATE); with an expected
    program, only while that one is attached (EPERM otherwise)."""
    opts = _LinkUpdateOpts(sz=ctypes.sizeof(_LinkUpdateOpts))
    if expected_prog_fd is not None:
        opts.flags, opts.old_prog_fd = BPF_F_REPLACE, expected_prog_fd
    _check(int(_lib().bpf_link_update(link_fd, prog_fd, ctypes.byref(opts))), "BPF_LINK_UPDATE")


def link_detach(link_fd: int) -> None:
    """Takes the link's program off its hook (BPF_LINK_DETACH); the link and
    its pins stay, defunct, until closed and removed."""
    _check(int(_lib().bpf_link_detach(link_fd)), "BPF_LINK_DETACH")


@dataclass(frozen=True)
class XdpHook:
    """The programs on an interface's XDP hook, by mode (0: none)."""

    drv_prog_id: int
    skb_prog_id: int
    hw_prog_id: int

    def prog_ids(self) -> list[int]:
        return [i for i in (self.drv_prog_id, self.skb_prog_id, self.hw_prog_id) if i]


def xdp_query(ifindex: int) -> XdpHook:
    """What the XDP hook of an interface in the calling thread's namespace
    holds, in each mode (bpf_xdp_query, over netlink)."""
    opts = _XdpQueryOpts(sz=ctypes.sizeof(_XdpQueryOpts))
    _check(int(_lib().bpf_xdp_query(ifindex, 0, ctypes.byref(opts))), "bpf_xdp_query")
    return XdpHook(int(opts.drv_prog_id), int(opts.skb_prog_id), int(opts.hw_prog_id))


def xdp_query_id(ifindex: int, flags: int = 0) -> int:
    """The program on the XDP hook in the mode of `flags` (0: the one
    attached, in whichever mode); 0 for none."""
    prog_id = ctypes.c_uint32(0)
    ret = int(_lib().bpf_xdp_query_id(ifindex, flags, ctypes.byref(prog_id)))
    if ret < 0 and _errno(ret) == errno.ENOENT:
        return 0
    _check(ret, "bpf_xdp_query_id")
    return int(prog_id.value)


def prog_query(ifindex: int, attach_type: int, capacity: int = 64) -> list[int]:
    """The programs on a multi-program hook (tcx) of an interface in the
    calling thread's namespace, in the order they run (BPF_PROG_QUERY)."""
    ids = (ctypes.c_uint32 * capacity)()
    count = ctypes.c_uint32(capacity)
    ret = int(_lib().bpf_prog_query(ifindex, attach_type, 0, None, ids, ctypes.byref(count)))
    _check(ret, f"BPF_PROG_QUERY (ifindex {ifindex}, attach type {attach_type})")
    return [int(ids[i]) for i in range(count.value)]


def open_program(prog_id: int) -> int:
    """A new descriptor of a loaded program, by its id (the caller closes
    it); BpfError with errno ENOENT when it is gone."""
    fd = int(_lib().bpf_prog_get_fd_by_id(prog_id))
    return _check(fd, f"BPF_PROG_GET_FD_BY_ID {prog_id}")


def program_name(prog_id: int) -> str:
    """A loaded program's name, by its id ("" when it is gone)."""
    try:
        fd = open_program(prog_id)
    except libbpf.BpfError as exc:
        if exc.errno == errno.ENOENT:
            return ""
        raise
    try:
        return libbpf.program_run_stats(fd).name
    finally:
        os.close(fd)


@dataclass(frozen=True)
class LinkInfo:
    """What the kernel says a link holds."""

    link_id: int
    link_type: int
    prog_id: int
    #: the interface's index in its namespace; 0 once the interface is gone
    #: (the link is then defunct)
    ifindex: int
    #: xdp, tcx-ingress, tcx-egress; None for a link of another kind
    hook: str | None


def link_info(link_fd: int) -> LinkInfo:
    info = _LinkInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    ret = int(_lib().bpf_obj_get_info_by_fd(link_fd, ctypes.byref(info), ctypes.byref(size)))
    _check(ret, "bpf_obj_get_info_by_fd (link)")
    hook: str | None = None
    if info.type == BPF_LINK_TYPE_XDP:
        hook = XDP
    elif info.type == BPF_LINK_TYPE_TCX:
        hook = {BPF_TCX_INGRESS: TCX_INGRESS, BPF_TCX_EGRESS: TCX_EGRESS}.get(info.attach_type)
    return LinkInfo(
        int(info.id), int(info.type), int(info.prog_id), int(info.ifindex) if hook else 0, hook
    )


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
