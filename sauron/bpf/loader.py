"""Compiling the data-plane object with bcc and handing out its programs and
maps. One compilation serves every attach point: the entry files share their
maps."""

from __future__ import annotations

import ctypes
import logging
import time
from dataclasses import dataclass
from typing import Any

from sauron.bpf import layout
from sauron.bpf.source import assemble

log = logging.getLogger(__name__)

XDP = "xdp"
TC = "tc"
SOCKET = "socket"  # a socket filter


#: what precedes IP on the link a program is built for
ETHERNET = "ethernet"
UPF_DEVICE = "upf_device"  # the UPF's TUN or GTP device: the frame starts at IP


@dataclass(frozen=True)
class EntryPoint:
    point: int
    source: str
    function: str
    hook: str  # XDP or TC
    link: str = ETHERNET

    @property
    def name(self) -> str:
        return layout.POINT_NAMES[self.point]


#: one entry file per attach point and link. On the UPF's own device the
#: hooks swap sides: what the device receives, the UPF sent.
ENTRY_POINTS: tuple[EntryPoint, ...] = (
    EntryPoint(layout.POINT_N3_INGRESS, "n3_xdp.c", "sauron_n3_ingress", XDP),
    EntryPoint(layout.POINT_N3_EGRESS, "n3_tc.c", "sauron_n3_egress", TC),
    EntryPoint(layout.POINT_N6_INGRESS, "n6_xdp.c", "sauron_n6_ingress", XDP),
    EntryPoint(layout.POINT_N6_EGRESS, "n6_tc.c", "sauron_n6_egress", TC),
    EntryPoint(layout.POINT_N6_EGRESS, "n6_tun_xdp.c", "sauron_n6_tun_egress", XDP, UPF_DEVICE),
    EntryPoint(layout.POINT_N6_INGRESS, "n6_tun_tc.c", "sauron_n6_tun_ingress", TC, UPF_DEVICE),
)

#: measurement programs, reached by tail call from the entry points of their
#: hook: (source, function, hook, program array)
MEASURE_PROGRAMS: tuple[tuple[str, str, str, str], ...] = (
    ("measure_xdp.c", "sauron_measure_xdp", XDP, "measure_xdp_prog"),
    ("measure_tc.c", "sauron_measure_tc", TC, "measure_tc_prog"),
)

BASE_CFLAGS = ("-Wno-unused-function", "-Wno-compare-distinct-pointer-types")


def _bcc() -> Any:
    try:
        import bcc
    except ImportError as exc:  # pragma: no cover - depends on the host
        raise RuntimeError(
            "bcc is not importable: install Debian's python3-bpfcc (make setup does)"
        ) from exc
    return bcc


def _prog_type(bcc: Any, hook: str) -> int:
    return int({XDP: bcc.BPF.XDP, TC: bcc.BPF.SCHED_CLS, SOCKET: bcc.BPF.SOCKET_FILTER}[hook])


class BpfObject:
    """Any set of xdp/ source files compiled together by bcc."""

    def __init__(self, sources: list[str], cflags: tuple[str, ...] = ()) -> None:
        bcc = _bcc()
        started = time.monotonic()
        text = assemble(sources)
        self.bpf = bcc.BPF(text=text.encode(), cflags=[*BASE_CFLAGS, *cflags])
        log.debug(
            "compiled",
            extra={"sources": sources, "seconds": round(time.monotonic() - started, 3)},
        )
        self._functions: dict[str, Any] = {}

    def function(self, name: str, hook: str) -> Any:
        """The loaded program (bcc function: .fd, .name)."""
        if name not in self._functions:
            bcc = _bcc()
            self._functions[name] = self.bpf.load_func(name.encode(), _prog_type(bcc, hook))
        return self._functions[name]

    def table(self, name: str) -> Any:
        return self.bpf[name.encode()]

    def map_fd(self, name: str) -> int:
        return int(self.table(name).map_fd)

    def close(self) -> None:
        self.bpf.cleanup()

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DataPlane(BpfObject):
    """The Sauron data-plane object: every entry point, shared maps.

    record_last=True builds the variant that stores each frame's parse result
    for the differential tests; production never uses it.
    """

    def __init__(self, record_last: bool = False) -> None:
        cflags = ("-DSAURON_RECORD_LAST=1",) if record_last else ()
        sources = [ep.source for ep in ENTRY_POINTS] + [m[0] for m in MEASURE_PROGRAMS]
        super().__init__(sources, cflags)
        self.record_last = record_last
        self.entry_points = {(ep.point, ep.link): ep for ep in ENTRY_POINTS}
        self._install_measurement()

    def _install_measurement(self) -> None:
        """Loads the measurement programs into the program arrays the entry
        points tail-call; whether they measure is up to sauron_config."""
        for _, function, hook, array in MEASURE_PROGRAMS:
            fd = int(self.function(function, hook).fd)
            self.table(array)[ctypes.c_int(0)] = ctypes.c_int(fd)

    def program(self, point: int, link: str = ETHERNET) -> Any:
        ep = self.entry_points[(point, link)]
        return self.function(ep.function, ep.hook)

    def program_fd(self, point: int, link: str = ETHERNET) -> int:
        return int(self.program(point, link).fd)

    def entry_program_fds(self) -> dict[int, list[int]]:
        """Every attach point's loaded programs: the Ethernet ones always,
        the others once an interface asked for them."""
        fds: dict[int, list[int]] = {}
        for ep in ENTRY_POINTS:
            if ep.link == ETHERNET or ep.function in self._functions:
                fds.setdefault(ep.point, []).append(self.program_fd(ep.point, ep.link))
        return fds

    def _config(self) -> layout.Config:
        raw = self.table("config")[ctypes.c_uint32(0)]
        return layout.Config.from_buffer_copy(bytes(raw))

    def _write_config(self, cfg: layout.Config) -> None:
        table = self.table("config")
        table[ctypes.c_uint32(0)] = table.Leaf.from_buffer_copy(bytes(cfg))

    def set_direction_mode(self, point: int, mode: int) -> None:
        cfg = self._config()
        cfg.direction_mode[point] = mode
        self._write_config(cfg)

    def bump_rules_generation(self) -> int:
        """Invalidates every session's cached slice; call after changing rules."""
        cfg = self._config()
        cfg.rules_generation = (cfg.rules_generation + 1) & 0xFFFFFFFF
        self._write_config(cfg)
        return int(cfg.rules_generation)

    def reset_counters(self) -> None:
        """Zeroes every counter map; classification rules stay."""
        for name in (
            "slice_stats",
            "qfi_stats",
            "events",
            "teid_slots",
            "measure_stats",
            "latency_hist",
        ):
            self.table(name).clear()  # on arrays, bcc writes zeroes
        for name in (
            "teid_stats",
            "ue_stats",
            "transit_stamps",
            "seq_state",
            "rtt_stamps",
            "tcp_flows",
            "echo_stamps",
            "peer_rtt",
        ):
            self.table(name).clear()
        if self.record_last:
            self.table("last_result").clear()

    def reset_rules(self) -> None:
        """Removes every classification rule and direction override; the
        measurement settings stay."""
        for name in ("teid_slice", "teid_range_slice", "ue4_slice", "ue6_slice"):
            self.table(name).clear()
        self.table("qfi_slice").clear()
        cfg = self._config()
        for point in range(layout.POINTS):
            cfg.direction_mode[point] = layout.DIRMODE_POINT
        cfg.rules_generation = (cfg.rules_generation + 1) & 0xFFFFFFFF
        self._write_config(cfg)

    def last_result(self) -> layout.ParseResult:
        if not self.record_last:
            raise RuntimeError("last_result needs DataPlane(record_last=True)")
        raw = self.table("last_result")[ctypes.c_uint32(0)]
        return layout.ParseResult.from_buffer_copy(bytes(raw))
