"""The few libbpf calls the agent makes directly, through ctypes.

bcc compiles and loads; libbpf (Debian's libbpf1) runs programs on crafted
frames (BPF_PROG_TEST_RUN), reads whole maps in one system call
(BPF_MAP_LOOKUP_BATCH) and pins objects under bpffs or opens them again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from dataclasses import dataclass
from functools import cache

import numpy as np


class BpfError(OSError):
    """A BPF system call failed; errno and the operation are kept."""


class _TestRunOpts(ctypes.Structure):
    # struct bpf_test_run_opts, libbpf 1.x (bpf.h)
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class _MapBatchOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _ProgInfo(ctypes.Structure):
    # the head of struct bpf_prog_info up to the statistics (uapi/linux/bpf.h)
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32),
        ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64),
        ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64),
        ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * 16),
        ("ifindex", ctypes.c_uint32),
        ("gpl_compatible_etc", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64),
        ("nr_jited_ksyms", ctypes.c_uint32),
        ("nr_jited_func_lens", ctypes.c_uint32),
        ("jited_ksyms", ctypes.c_uint64),
        ("jited_func_lens", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32),
        ("func_info", ctypes.c_uint64),
        ("nr_func_info", ctypes.c_uint32),
        ("nr_line_info", ctypes.c_uint32),
        ("line_info", ctypes.c_uint64),
        ("jited_line_info", ctypes.c_uint64),
        ("nr_jited_line_info", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32),
        ("jited_line_info_rec_size", ctypes.c_uint32),
        ("nr_prog_tags", ctypes.c_uint32),
        ("prog_tags", ctypes.c_uint64),
        ("run_time_ns", ctypes.c_uint64),
        ("run_cnt", ctypes.c_uint64),
        ("recursion_misses", ctypes.c_uint64),
        ("verified_insns", ctypes.c_uint32),
        ("attach_btf_obj_id", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
    ]


class _MapInfo(ctypes.Structure):
    # the head of struct bpf_map_info (uapi/linux/bpf.h)
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * 16),
    ]


@cache
def library() -> ctypes.CDLL:
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.bpf_prog_test_run_opts.argtypes = [ctypes.c_int, ctypes.POINTER(_TestRunOpts)]
    lib.bpf_prog_test_run_opts.restype = ctypes.c_int
    lib.bpf_map_lookup_batch.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_uint32),
        ctypes.POINTER(_MapBatchOpts),
    ]
    lib.bpf_map_lookup_batch.restype = ctypes.c_int
    lib.bpf_obj_get_info_by_fd.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_uint32),
    ]
    lib.bpf_obj_get_info_by_fd.restype = ctypes.c_int
    lib.bpf_map_delete_elem.argtypes = [ctypes.c_int, ctypes.c_void_p]
    lib.bpf_map_delete_elem.restype = ctypes.c_int
    lib.libbpf_num_possible_cpus.argtypes = []
    lib.libbpf_num_possible_cpus.restype = ctypes.c_int
    lib.bpf_enable_stats.argtypes = [ctypes.c_int]
    lib.bpf_enable_stats.restype = ctypes.c_int
    lib.bpf_obj_pin.argtypes = [ctypes.c_int, ctypes.c_char_p]
    lib.bpf_obj_pin.restype = ctypes.c_int
    lib.bpf_obj_get.argtypes = [ctypes.c_char_p]
    lib.bpf_obj_get.restype = ctypes.c_int
    for name in ("bpf_map_lookup_elem", "bpf_map_get_next_key"):
        getattr(lib, name).argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_int
    lib.bpf_map_update_elem.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_uint64,
    ]
    lib.bpf_map_update_elem.restype = ctypes.c_int
    return lib


def error_code(ret: int) -> int:
    """The errno of a failed libbpf call: libbpf 1.x returns it negated;
    a plain -1 leaves it in errno."""
    return -ret if ret < -1 else ctypes.get_errno() or errno.EIO


def check(ret: int, what: str) -> int:
    """The call's result; BpfError naming the call when it failed."""
    if ret < 0:
        code = error_code(ret)
        raise BpfError(code, f"{what}: {os.strerror(code)}")
    return ret


def missing(ret: int, what: str) -> bool:
    """True when a call on one map entry found no such entry (ENOENT);
    raises on any other failure."""
    if ret >= 0:
        return False
    if error_code(ret) == errno.ENOENT:
        return True
    check(ret, what)
    return False  # not reached: check raised


def percpu_stride(value_size: int) -> int:
    """The kernel lays per-CPU values out 8-byte aligned, one per CPU."""
    return (value_size + 7) & ~7


def delete_elem(map_fd: int, key: bytes) -> bool:
    """Deletes one entry; False when it was not there (someone else took it)."""
    buf = ctypes.create_string_buffer(key, len(key))
    return not missing(library().bpf_map_delete_elem(map_fd, buf), "BPF_MAP_DELETE_ELEM")


@dataclass(frozen=True)
class MapInfo:
    """What the kernel says of a map."""

    map_type: int
    map_id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str


#: map types whose values are one per possible CPU (uapi/linux/bpf.h)
PERCPU_MAP_TYPES = frozenset({5, 6, 10})  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH
#: map types whose every index exists (deleting is writing zeroes)
ARRAY_MAP_TYPES = frozenset({2, 6})  # ARRAY, PERCPU_ARRAY
MAP_TYPE_RINGBUF = 27
PROG_ARRAY_TYPE = 3


def map_info(fd: int) -> MapInfo:
    info = _MapInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    ret = library().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size))
    check(ret, "bpf_obj_get_info_by_fd")
    return MapInfo(
        map_type=int(info.type),
        map_id=int(info.id),
        key_size=int(info.key_size),
        value_size=int(info.value_size),
        max_entries=int(info.max_entries),
        flags=int(info.map_flags),
        name=info.name.decode(errors="replace"),
    )


def lookup_elem(map_fd: int, key: bytes, value_size: int) -> bytes | None:
    """One entry's value (per-CPU maps: every CPU's, 8-byte strided);
    None when the key is not there."""
    key_buf = ctypes.create_string_buffer(key, len(key))
    value = ctypes.create_string_buffer(value_size)
    ret = library().bpf_map_lookup_elem(map_fd, key_buf, value)
    return None if missing(ret, "BPF_MAP_LOOKUP_ELEM") else value.raw


def lookup_and_delete_elem(map_fd: int, key: bytes, value_size: int) -> bytes | None:
    """One entry's value, the entry removed in the same call (nothing the
    kernel adds in between is lost); None when the key is not there."""
    key_buf = ctypes.create_string_buffer(key, len(key))
    value = ctypes.create_string_buffer(value_size)
    ret = library().bpf_map_lookup_and_delete_elem(map_fd, key_buf, value)
    return None if missing(ret, "BPF_MAP_LOOKUP_AND_DELETE_ELEM") else value.raw


def update_elem(map_fd: int, key: bytes, value: bytes) -> None:
    key_buf = ctypes.create_string_buffer(key, len(key))
    value_buf = ctypes.create_string_buffer(value, len(value))
    check(library().bpf_map_update_elem(map_fd, key_buf, value_buf, 0), "BPF_MAP_UPDATE_ELEM")


def next_key(map_fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """The key after `key` (None: the first); None past the last."""
    key_buf = None if key is None else ctypes.create_string_buffer(key, len(key))
    out = ctypes.create_string_buffer(key_size)
    ret = library().bpf_map_get_next_key(map_fd, key_buf, out)
    return None if missing(ret, "BPF_MAP_GET_NEXT_KEY") else out.raw


def obj_pin(fd: int, path: str) -> None:
    """Pins a program, map or link under bpffs: it lives on, whatever
    happens to this process, until the pin is removed (unlink)."""
    check(library().bpf_obj_pin(fd, path.encode()), f"BPF_OBJ_PIN {path}")


def obj_get(path: str) -> int:
    """A new descriptor of the object pinned at `path` (the caller closes it)."""
    fd = int(library().bpf_obj_get(path.encode()))
    check(fd, f"BPF_OBJ_GET {path}")
    return fd


@cache
def possible_cpus() -> int:
    count = int(library().libbpf_num_possible_cpus())
    check(count, "libbpf_num_possible_cpus")
    return count


@dataclass(frozen=True)
class TestRun:
    """What one BPF_PROG_TEST_RUN returned."""

    retval: int
    data_out: bytes
    duration_ns: int


#: XDP_PASS (uapi/linux/bpf.h), TC_ACT_OK and TC_ACT_UNSPEC (uapi/linux/
#: pkt_cls.h; -1, as the unsigned return value a test run reports)
XDP_PASS = 2
TC_ACT_OK = 0
TC_ACT_UNSPEC = 0xFFFFFFFF


def test_run(prog_fd: int, frame: bytes, repeat: int = 1) -> TestRun:
    """Runs a loaded program on one frame. duration_ns is the kernel's mean
    per repetition."""
    data_in = ctypes.create_string_buffer(frame, len(frame))
    out_size = len(frame) + 256
    data_out = ctypes.create_string_buffer(out_size)
    opts = _TestRunOpts(
        sz=ctypes.sizeof(_TestRunOpts),
        data_in=ctypes.cast(data_in, ctypes.c_void_p),
        data_out=ctypes.cast(data_out, ctypes.c_void_p),
        data_size_in=len(frame),
        data_size_out=out_size,
        repeat=repeat,
    )
    ret = library().bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts))
    check(ret, "BPF_PROG_TEST_RUN")
    return TestRun(
        retval=int(opts.retval),
        data_out=data_out.raw[: opts.data_size_out],
        duration_ns=int(opts.duration),
    )


def lookup_batch(
    map_fd: int, key_size: int, value_size: int, max_entries: int
) -> tuple[bytes, bytes, int]:
    """Reads every entry of a map: (keys, values, count). value_size is the
    size of one entry's value as the kernel returns it (for per-CPU maps, the
    8-byte-rounded value size times the possible CPUs)."""
    keys, values, total = lookup_batch_arrays(map_fd, key_size, value_size, max_entries)
    return keys.tobytes(), values.tobytes(), total


def lookup_batch_arrays(
    map_fd: int, key_size: int, value_size: int, max_entries: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """lookup_batch's reading as the byte arrays the kernel filled, without
    copying them out (a big session table's values are megabytes)."""
    lib = library()
    # uninitialised buffers: the kernel fills what it returns, and only that
    # part is copied out (a per-CPU session table's buffer is megabytes)
    keys = np.empty(key_size * max_entries, dtype=np.uint8)
    values = np.empty(value_size * max_entries, dtype=np.uint8)
    keys_at, values_at = keys.ctypes.data, values.ctypes.data
    out_batch = ctypes.c_uint64(0)
    opts = _MapBatchOpts(sz=ctypes.sizeof(_MapBatchOpts))
    total = 0
    in_batch: ctypes.c_void_p | None = None
    while total < max_entries:
        count = ctypes.c_uint32(max_entries - total)
        ret = lib.bpf_map_lookup_batch(
            map_fd,
            in_batch,
            ctypes.byref(out_batch),
            ctypes.c_void_p(keys_at + total * key_size),
            ctypes.c_void_p(values_at + total * value_size),
            ctypes.byref(count),
            ctypes.byref(opts),
        )
        err = ctypes.get_errno() if ret < 0 else 0
        total += count.value
        if ret < 0:
            if err == errno.ENOENT or -ret == errno.ENOENT:
                break
            check(ret, "BPF_MAP_LOOKUP_BATCH")
        in_batch = ctypes.c_void_p(ctypes.addressof(out_batch))
    return keys[: total * key_size], values[: total * value_size], total


def percpu_words(values: bytes, count: int, ncpu: int, stride: int) -> np.ndarray:
    """A per-CPU map's batch of values as 64-bit words: [entry, cpu, word]."""
    return np.frombuffer(values, dtype="<u8", count=count * ncpu * stride // 8).reshape(
        count, ncpu, stride // 8
    )


@dataclass(frozen=True)
class ProgramRunStats:
    """The kernel's own accounting of a program (kernel.bpf_stats_enabled)."""

    name: str
    run_time_ns: int
    run_count: int
    #: instructions the verifier walked to accept it (the limit is 1 000 000)
    verified_instructions: int = 0


def program_run_stats(prog_fd: int) -> ProgramRunStats:
    info = _ProgInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    ret = library().bpf_obj_get_info_by_fd(prog_fd, ctypes.byref(info), ctypes.byref(size))
    check(ret, "bpf_obj_get_info_by_fd")
    return ProgramRunStats(
        name=info.name.decode(errors="replace"),
        run_time_ns=int(info.run_time_ns),
        run_count=int(info.run_cnt),
        verified_instructions=int(info.verified_insns),
    )


def program_id(prog_fd: int) -> int:
    """The kernel's id of a loaded program (what a link reports it runs)."""
    info = _ProgInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    ret = library().bpf_obj_get_info_by_fd(prog_fd, ctypes.byref(info), ctypes.byref(size))
    check(ret, "bpf_obj_get_info_by_fd")
    return int(info.id)


BPF_STATS_RUN_TIME = 0


def enable_run_time_stats() -> int:
    """Turns the kernel's BPF run-time statistics on for as long as the
    returned descriptor stays open (BPF_ENABLE_STATS): closing it, or the
    process ending in any way, puts kernel.bpf_stats_enabled back."""
    fd = int(library().bpf_enable_stats(BPF_STATS_RUN_TIME))
    check(fd, "bpf_enable_stats")
    return fd
