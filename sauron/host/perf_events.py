"""perf_event_open(2) through ctypes: counting events (hardware cycles, RAPL
energy) the energy estimator and the doctor open themselves."""

from __future__ import annotations

import ctypes

PERF_TYPE_HARDWARE = 0
PERF_COUNT_HW_CPU_CYCLES = 0
SYS_PERF_EVENT_OPEN = 298  # x86_64


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
    type_: int, config: int, cpu: int = -1, pid: int = 0, enabled: bool = False
) -> int:
    """Opens a counting perf event; returns the fd or -errno. pid=-1 with a
    cpu counts everything on that CPU."""
    attr = _PerfEventAttr(type=type_, size=ctypes.sizeof(_PerfEventAttr), config=config)
    attr.flags = 0 if enabled else 1 << 0  # bit 0: disabled
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(SYS_PERF_EVENT_OPEN, ctypes.byref(attr), pid, cpu, -1, 0)
    return int(fd) if fd >= 0 else -ctypes.get_errno()
