"""The kernel's calls on BPF links, through libbpf (Debian's libbpf1, 1.1):
create one (an interface's XDP or tcx hook, a perf event), swap its program,
detach it, ask what it holds; open a raw tracepoint; ask what an
interface's hooks run. sauron.bpf.links decides what to attach where; this
module only speaks to the kernel.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from dataclasses import dataclass
from functools import cache

from sauron.bpf import libbpf
from sauron.host.perf_events import PERF_EVENT_IOC_ENABLE

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
#: generic attach flags (uapi/linux/bpf.h): BPF_F_REPLACE on a link update
#: replaces only the program expected; BPF_F_BEFORE with no relative
#: program puts a tcx program at the head of the hook's list
BPF_F_REPLACE = 1 << 2
BPF_F_BEFORE = 1 << 3
#: a link of a program to a perf event (enum bpf_attach_type)
BPF_PERF_EVENT = 41


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
    """libbpf's one handle (sauron.bpf.libbpf), with the prototypes of the
    link calls."""
    lib = libbpf.library()
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
    lib.bpf_raw_tracepoint_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.bpf_raw_tracepoint_open.restype = ctypes.c_int
    return lib


def link_create(prog_fd: int, ifindex: int, attach_type: int, flags: int = 0) -> int:
    """A new link of the program on an interface of the calling thread's
    namespace (BPF_LINK_CREATE); its descriptor, which the caller closes."""
    opts = _LinkCreateOpts(sz=ctypes.sizeof(_LinkCreateOpts), flags=flags)
    ret = int(_lib().bpf_link_create(prog_fd, ifindex, attach_type, ctypes.byref(opts)))
    return libbpf.check(ret, f"BPF_LINK_CREATE (ifindex {ifindex}, attach type {attach_type})")


def link_update(link_fd: int, prog_fd: int, expected_prog_fd: int | None = None) -> None:
    """Swaps the link's program at once (BPF_LINK_UPDATE); with an expected
    program, only while that one is attached (EPERM otherwise)."""
    opts = _LinkUpdateOpts(sz=ctypes.sizeof(_LinkUpdateOpts))
    if expected_prog_fd is not None:
        opts.flags, opts.old_prog_fd = BPF_F_REPLACE, expected_prog_fd
    libbpf.check(
        int(_lib().bpf_link_update(link_fd, prog_fd, ctypes.byref(opts))), "BPF_LINK_UPDATE"
    )


def link_detach(link_fd: int) -> None:
    """Takes the link's program off its hook (BPF_LINK_DETACH); the link and
    its pins stay, defunct, until closed and removed."""
    libbpf.check(int(_lib().bpf_link_detach(link_fd)), "BPF_LINK_DETACH")


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
    libbpf.check(int(_lib().bpf_xdp_query(ifindex, 0, ctypes.byref(opts))), "bpf_xdp_query")
    return XdpHook(int(opts.drv_prog_id), int(opts.skb_prog_id), int(opts.hw_prog_id))


def xdp_query_id(ifindex: int, flags: int = 0) -> int:
    """The program on the XDP hook in the mode of `flags` (0: the one
    attached, in whichever mode); 0 for none."""
    prog_id = ctypes.c_uint32(0)
    ret = int(_lib().bpf_xdp_query_id(ifindex, flags, ctypes.byref(prog_id)))
    if ret < 0 and libbpf.error_code(ret) == errno.ENOENT:
        return 0
    libbpf.check(ret, "bpf_xdp_query_id")
    return int(prog_id.value)


def prog_query(ifindex: int, attach_type: int, capacity: int = 64) -> list[int]:
    """The programs on a multi-program hook (tcx) of an interface in the
    calling thread's namespace, in the order they run (BPF_PROG_QUERY)."""
    ids = (ctypes.c_uint32 * capacity)()
    count = ctypes.c_uint32(capacity)
    ret = int(_lib().bpf_prog_query(ifindex, attach_type, 0, None, ids, ctypes.byref(count)))
    libbpf.check(ret, f"BPF_PROG_QUERY (ifindex {ifindex}, attach type {attach_type})")
    return [int(ids[i]) for i in range(count.value)]


def open_program(prog_id: int) -> int:
    """A new descriptor of a loaded program, by its id (the caller closes
    it); BpfError with errno ENOENT when it is gone."""
    fd = int(_lib().bpf_prog_get_fd_by_id(prog_id))
    return libbpf.check(fd, f"BPF_PROG_GET_FD_BY_ID {prog_id}")


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
    libbpf.check(ret, "bpf_obj_get_info_by_fd (link)")
    hook: str | None = None
    if info.type == BPF_LINK_TYPE_XDP:
        hook = XDP
    elif info.type == BPF_LINK_TYPE_TCX:
        hook = {BPF_TCX_INGRESS: TCX_INGRESS, BPF_TCX_EGRESS: TCX_EGRESS}.get(info.attach_type)
    return LinkInfo(
        int(info.id), int(info.type), int(info.prog_id), int(info.ifindex) if hook else 0, hook
    )


def raw_tracepoint_open(tracepoint: str, prog_fd: int) -> int:
    """The program on a raw tracepoint of the kernel (BPF_RAW_TRACEPOINT_OPEN):
    a link's descriptor; closing it (or the process ending) detaches it."""
    ret = int(_lib().bpf_raw_tracepoint_open(tracepoint.encode(), prog_fd))
    return libbpf.check(ret, f"BPF_RAW_TRACEPOINT_OPEN {tracepoint}")


def perf_event_link(prog_fd: int, event_fd: int) -> int:
    """The program on a perf event through a link, the event then enabled:
    the link's descriptor; closing it and the event's detaches it."""
    link = link_create(prog_fd, event_fd, BPF_PERF_EVENT)
    fcntl.ioctl(event_fd, PERF_EVENT_IOC_ENABLE, 0)
    return link
