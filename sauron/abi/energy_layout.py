"""The Python view of sauron/bpf/c/include/sauron_energy.h, the energy
probe's header.

Its constants and enum values are read from the header itself, as
sauron.abi.layout reads sauron_shared.h, so the header is their only owner.
The ctypes structures mirror its structs; a test holds them against the
types clang builds from the same header.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

from sauron.abi import header
from sauron.abi.source import energy_header


@cache
def constants() -> dict[str, int]:
    """Every SAURON_* #define and enumerator of the energy header."""
    return header.constants(energy_header())


_E = constants()
MAX_WATCHED = _E["SAURON_MAX_WATCHED"]
WATCHED_TASKS = _E["SAURON_WATCHED_TASKS"]
WATCHED_CGROUPS = _E["SAURON_WATCHED_CGROUPS"]
WATCHED_THREADS = _E["SAURON_WATCHED_THREADS"]
SOFTIRQ_NET_TX = _E["SAURON_SOFTIRQ_NET_TX"]
SOFTIRQ_NET_RX = _E["SAURON_SOFTIRQ_NET_RX"]


class CpuTime(ctypes.Structure):
    _fields_ = [
        ("idle_ns", ctypes.c_uint64),
        ("net_rx_ns", ctypes.c_uint64),
        ("net_tx_ns", ctypes.c_uint64),
        ("net_rx_runs", ctypes.c_uint64),
        ("net_tx_runs", ctypes.c_uint64),
        ("switches", ctypes.c_uint64),
        ("sauron_rx_ns", ctypes.c_uint64),
        ("other_rx_ns", ctypes.c_uint64),
        ("sauron_rx_packets", ctypes.c_uint64),
        ("other_rx_packets", ctypes.c_uint64),
        ("stretch_start_ns", ctypes.c_uint64),
        ("stretch_softirq_ns", ctypes.c_uint64),
        ("softirq_start_ns", ctypes.c_uint64),
        ("softirq_vec", ctypes.c_uint64),
        ("segment_start_ns", ctypes.c_uint64),
        ("poll_head_ns", ctypes.c_uint64),
        ("last_dev", ctypes.c_uint64),
        ("segment_owner", ctypes.c_uint32),
        ("last_dev_owner", ctypes.c_uint32),
        ("context_tgid", ctypes.c_uint32),
        ("context_known", ctypes.c_uint32),
    ]


class ReceiveOffsets(ctypes.Structure):
    _fields_ = [
        ("skb_dev", ctypes.c_uint32),
        ("napi_dev", ctypes.c_uint32),
        ("dev_ifindex", ctypes.c_uint32),
        ("dev_net", ctypes.c_uint32),
        ("net_inum", ctypes.c_uint32),
        ("known", ctypes.c_uint32),
    ]


class LinkKey(ctypes.Structure):
    _fields_ = [("netns", ctypes.c_uint32), ("ifindex", ctypes.c_uint32)]


class WatchedTime(ctypes.Structure):
    _fields_ = [
        ("on_cpu_ns", ctypes.c_uint64),
        ("softirq_ns", ctypes.c_uint64),
        ("stretches", ctypes.c_uint64),
        ("run_ns", ctypes.c_uint64),
    ]


#: map name -> (key type, value type) for the maps of sauron/bpf/c/energy/energy.c
MAP_LAYOUTS: dict[str, tuple[type[Any], type[Any]]] = {
    "cpu_time": (ctypes.c_uint32, CpuTime),
    "watched_time": (ctypes.c_uint32, WatchedTime),
    "watched_tasks": (ctypes.c_uint32, ctypes.c_uint32),
    "watched_cgroups": (ctypes.c_uint64, ctypes.c_uint32),
    "watched_threads": (ctypes.c_uint64, ctypes.c_uint32),
    "receive_offsets": (ctypes.c_uint32, ReceiveOffsets),
    "receiving_links": (LinkKey, ctypes.c_uint32),
}
