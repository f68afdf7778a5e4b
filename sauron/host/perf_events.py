"""perf_event_open(2) through ctypes: counting events (hardware cycles, RAPL
energy) the energy estimator and the doctor open themselves, and the
energy probe's clock tick (a sampling software event a program runs on)."""

from __future__ import annotations

import ctypes
import errno
import platform

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_SW_CPU_CLOCK = 0
#: the system call's number, by machine
SYS_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319, "s390x": 331}
PERF_EVENT_IOC_ENABLE = 0x2400


class _PerfEventAttr(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
    ]


def perf_event_open(
    type_: int,
    config: int,
    cpu: int = -1,
    pid: int = 0,
    enabled: bool = False,
    sample_period: int = 0,
) -> int:
    """Opens a perf event (counting; sampling every `sample_period` events
    when given); returns the fd or -errno. pid=-1 with a cpu counts
    everything on that CPU."""
    number = SYS_PERF_EVENT_OPEN.get(platform.machine())
    if number is None:
        return -errno.ENOSYS
    attr = _PerfEventAttr(
        type=type_, size=ctypes.sizeof(_PerfEventAttr), config=config, sample_period=sample_period
    )
    attr.flags = 0 if enabled else 1 << 0  # bit 0: disabled
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(number, ctypes.byref(attr), pid, cpu, -1, 0)
    return int(fd) if fd >= 0 else -ctypes.get_errno()
