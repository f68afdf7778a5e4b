"""The Python view of sauron/bpf/c/include/sauron_diagnosis.h, the
diagnosis probe's header.

Its constants and enum values are read from the header itself, as
sauron.abi.layout reads sauron_shared.h, so the header is their only owner.
The ctypes structures mirror its structs; a test holds them against the
types clang builds from the same header. The wait histograms are the data
path's (layout.LatencyHist), of its latency geometry."""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

from sauron.abi import header, layout
from sauron.abi.source import diagnosis_header


@cache
def constants() -> dict[str, int]:
    """Every SAURON_* #define and enumerator of the diagnosis header."""
    return header.constants(diagnosis_header())


_D = constants()
WATCHED = _D["SAURON_DIAG_WATCHED"]
WATCHED_TASKS = _D["SAURON_DIAG_WATCHED_TASKS"]
THREADS = _D["SAURON_DIAG_THREADS"]
CULPRITS = _D["SAURON_DIAG_CULPRITS"]
DROP_REASONS = _D["SAURON_DIAG_DROP_REASONS"]
COMM = _D["SAURON_DIAG_COMM"]
WAIT_RUNQUEUE = _D["SAURON_WAIT_RUNQUEUE"]
WAIT_FUTEX = _D["SAURON_WAIT_FUTEX"]
WAIT_ACTIVATION = _D["SAURON_WAIT_RUNQUEUE_ACTIVATION"]
WAITS = _D["SAURON_WAITS"]
WAIT_NAMES = {
    WAIT_RUNQUEUE: "run_queue",
    WAIT_FUTEX: "futex",
    WAIT_ACTIVATION: "run_queue_activation",
}


class Config(ctypes.Structure):
    _fields_ = [
        ("task_pid", ctypes.c_uint32),
        ("task_tgid", ctypes.c_uint32),
        ("futex_nr", ctypes.c_uint32),
        ("futex_waitv_nr", ctypes.c_uint32),
        ("known", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
    ]


class TaskCounts(ctypes.Structure):
    _fields_ = [
        ("preemptions", ctypes.c_uint64),
        ("sleeps", ctypes.c_uint64),
        ("wakeups", ctypes.c_uint64),
    ]


class CulpritKey(ctypes.Structure):
    _fields_ = [
        ("watch", ctypes.c_uint32),
        ("tgid", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
    ]


class Culprit(ctypes.Structure):
    _fields_ = [
        ("wait_ns", ctypes.c_uint64),
        ("waits", ctypes.c_uint64),
        ("comm", ctypes.c_char * COMM),
    ]


#: map name -> (key type, value type) for the maps of sauron/bpf/c/diagnosis/diagnosis.c
MAP_LAYOUTS: dict[str, tuple[type[Any], type[Any]]] = {
    "diag_config": (ctypes.c_uint32, Config),
    "diag_watched": (ctypes.c_uint32, ctypes.c_uint32),
    "diag_runnable": (ctypes.c_uint32, ctypes.c_uint64),
    "diag_in_futex": (ctypes.c_uint32, ctypes.c_uint64),
    "diag_activation": (ctypes.c_uint32, ctypes.c_uint64),
    "diag_waits": (ctypes.c_uint32, layout.LatencyHist),
    "diag_task": (ctypes.c_uint32, TaskCounts),
    "diag_culprits": (CulpritKey, Culprit),
    "diag_drops": (ctypes.c_uint32, ctypes.c_uint64),
}
