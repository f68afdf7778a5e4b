"""Compiling the data-plane object with bcc and handing out its programs and
maps. One compilation serves every attach point: the entry files share their
maps."""

from __future__ import annotations

import ctypes
import logging
import time
from dataclasses import dataclass
from typing import Any

from sauron.abi import layout
from sauron.abi.source import assemble
from sauron.bpf import libbpf
from sauron.bpf.mapped import MappedArray

log = logging.getLogger(__name__)

XDP = "xdp"
TC = "tc"
SOCKET = "socket"  # a socket filter
RAW_TRACEPOINT = "raw_tracepoint"
PERF_EVENT = "perf_event"


#: what precedes IP on the link a program is built for
ETHERNET = "ethernet"
UPF_DEVICE = "upf_device"  # the UPF's TUN or GTP device: the frame starts at IP


class NoSuchProgram(LookupError):
    """No entry program for that point, link and hook."""


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


#: one entry file per attach point, link and hook. On the UPF's own device
#: the hooks swap sides: what the device receives, the UPF sent. A point
#: seen on a link's receiving side has an XDP and a TC entry (the cheaper
#: differs by driver); the first listed is the default.
ENTRY_POINTS: tuple[EntryPoint, ...] = (
    EntryPoint(layout.POINT_N3_INGRESS, "n3_xdp.c", "sauron_n3_ingress", XDP),
    EntryPoint(layout.POINT_N3_INGRESS, "n3_ingress_tc.c", "sauron_n3_ingress_tc", TC),
    EntryPoint(layout.POINT_N3_EGRESS, "n3_tc.c", "sauron_n3_egress", TC),
    EntryPoint(layout.POINT_N6_INGRESS, "n6_xdp.c", "sauron_n6_ingress", XDP),
    EntryPoint(layout.POINT_N6_INGRESS, "n6_ingress_tc.c", "sauron_n6_ingress_tc", TC),
    EntryPoint(layout.POINT_N6_EGRESS, "n6_tc.c", "sauron_n6_egress", TC),
    EntryPoint(layout.POINT_N6_EGRESS, "n6_tun_xdp.c", "sauron_n6_tun_egress", XDP, UPF_DEVICE),
    EntryPoint(
        layout.POINT_N6_EGRESS, "n6_tun_egress_tc.c", "sauron_n6_tun_egress_tc", TC, UPF_DEVICE
    ),
    EntryPoint(layout.POINT_N6_INGRESS, "n6_tun_tc.c", "sauron_n6_tun_ingress", TC, UPF_DEVICE),
)


def _tail_program(part: str, hook: str, point: int) -> tuple[str, str, str, str, int]:
    """A program reached by tail call: `part`_`hook`.c's function for the
    point, at the point's index of the `part`_`hook`_prog program array."""
    return (
        f"{part}_{hook}.c",
        f"sauron_{part}_{hook}_{layout.POINT_NAMES[point]}",
        hook,
        f"{part}_{hook}_prog",
        point,
    )


#: measurement programs, reached by tail call from the entry points of their
#: hook, one per point (verified apart, each with its own side's paths), and
#: the security checks, reached by tail call from N3 ingress's:
#: (source, function, hook, program array, index = point)
MEASURE_PROGRAMS: tuple[tuple[str, str, str, str, int], ...] = (
    _tail_program("security", XDP, layout.POINT_N3_INGRESS),
    _tail_program("security", TC, layout.POINT_N3_INGRESS),
    _tail_program("measure", XDP, layout.POINT_N3_INGRESS),
    _tail_program("measure", XDP, layout.POINT_N6_INGRESS),
    _tail_program("measure", XDP, layout.POINT_N6_EGRESS),
    _tail_program("measure", TC, layout.POINT_N3_INGRESS),
    _tail_program("measure", TC, layout.POINT_N3_EGRESS),
    _tail_program("measure", TC, layout.POINT_N6_INGRESS),
    _tail_program("measure", TC, layout.POINT_N6_EGRESS),
)

#: the expiry of transit stamps nobody matched (source, function), run by
#: the agent with BPF_PROG_TEST_RUN, never attached
TRANSIT_EXPIRY_PROGRAM = ("transit_expiry.c", "sauron_transit_expire")

#: what every Sauron program returns on its hook: pass the frame (on TC with
#: no verdict of its own, so the filters after it still run)
PASS_VERDICT = {XDP: libbpf.XDP_PASS, TC: libbpf.TC_ACT_UNSPEC}

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
    return int(
        {
            XDP: bcc.BPF.XDP,
            TC: bcc.BPF.SCHED_CLS,
            SOCKET: bcc.BPF.SOCKET_FILTER,
            RAW_TRACEPOINT: bcc.BPF.RAW_TRACEPOINT,
            PERF_EVENT: bcc.BPF.PERF_EVENT,
        }[hook]
    )


class BpfObject:
    """Any set of sauron/bpf/c/ source files compiled together by bcc."""

    def __init__(self, sources: list[str], cflags: tuple[str, ...] = ()) -> None:
        bcc = _bcc()
        started = time.monotonic()
        text = assemble(sources)
        # the CPU-major counter arrays hold a copy for every possible CPU
        cpus = f"-DSAURON_CPUS={libbpf.possible_cpus()}"
        self.bpf = bcc.BPF(text=text.encode(), cflags=[*BASE_CFLAGS, cpus, *cflags])
        log.debug(
            "compiled",
            extra={"sources": sources, "seconds": round(time.monotonic() - started, 3)},
        )
        self._functions: dict[str, Any] = {}
        self._mapped: dict[str, MappedArray] = {}

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

    def mapped(self, name: str, value_type: type[Any], cpu_major: bool = True) -> MappedArray:
        """A BPF_F_MMAPABLE array mapped into this process (once)."""
        if name not in self._mapped:
            self._mapped[name] = MappedArray(self.table(name), value_type, cpu_major)
        return self._mapped[name]

    def close(self) -> None:
        for array in self._mapped.values():
            array.close()
        self._mapped.clear()
        self.bpf.cleanup()

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def data_path_sources() -> list[str]:
    """The files of the data-plane object: entry points, measurement
    programs, the transit expiry."""
    sources = [ep.source for ep in ENTRY_POINTS]
    sources += sorted({m[0] for m in MEASURE_PROGRAMS})
    sources.append(TRANSIT_EXPIRY_PROGRAM[0])
    return sources


def record_cflags(record_last: bool) -> tuple[str, ...]:
    return ("-DSAURON_RECORD_LAST=1",) if record_last else ()


class DataPathControl:
    """What the agent does with a data plane's maps and programs, whether
    it compiled them itself (DataPlane) or opened them pinned
    (sauron.bpf.pinned.PinnedDataPlane): a subclass gives `table`,
    `function` and `record_last`."""

    record_last: bool
    entry_points: dict[tuple[int, str, str | None], EntryPoint]

    def table(self, name: str) -> Any:
        raise NotImplementedError

    def function(self, name: str, hook: str) -> Any:
        raise NotImplementedError

    def entry_program_fds(self) -> dict[int, list[int]]:
        """Every attach point's loaded entry programs (the energy meter
        reads their run time)."""
        raise NotImplementedError

    def program(self, point: int, link: str = ETHERNET, hook: str | None = None) -> Any:
        """The loaded entry program of a point on a link: on the given hook,
        or the default one (XDP where the point has it)."""
        ep = self.entry(point, link, hook)
        return self.function(ep.function, ep.hook)

    def program_fd(self, point: int, link: str = ETHERNET, hook: str | None = None) -> int:
        return int(self.program(point, link, hook).fd)

    def pass_verdict(self, point: int, link: str = ETHERNET, hook: str | None = None) -> int:
        """The return value with which that program passes a frame."""
        return PASS_VERDICT[self.entry(point, link, hook).hook]

    def entry(self, point: int, link: str = ETHERNET, hook: str | None = None) -> EntryPoint:
        try:
            return self.entry_points[(point, link, hook)]
        except KeyError:
            on = f"on {hook} " if hook else ""
            raise NoSuchProgram(
                f"no program {on}for {layout.POINT_NAMES[point]} on a link of kind {link}"
            ) from None

    def transit_expiry_fd(self) -> int:
        """The program that frees overdue transit stamps (TransitExpiry)."""
        _, function = TRANSIT_EXPIRY_PROGRAM
        return int(self.function(function, XDP).fd)

    def _config(self) -> layout.Config:
        raw = self.table("config")[ctypes.c_uint32(0)]
        return layout.Config.from_buffer_copy(bytes(raw))

    def _write_config(self, cfg: layout.Config) -> None:
        self.table("config")[ctypes.c_uint32(0)] = cfg

    def set_transit_expiry(self, timeout_ns: int) -> None:
        """How old a transit stamp is lost, for the data path's takeover of
        an overdue stamp's slot (0: never; only the sweep frees them)."""
        cfg = self._config()
        cfg.transit_expiry_ns = timeout_ns
        self._write_config(cfg)

    def measure_bits(self) -> int:
        """sauron_config.measure: what the programs measure and check."""
        return int(self._config().measure)

    def set_measure_bits(self, owned: int, bits: int) -> None:
        """Sets the bits of sauron_config.measure that `owned` covers to
        `bits`, the others as they are: each part owns its own bits (the
        measurements, the evidence tap, the security checks)."""
        cfg = self._config()
        cfg.measure = (cfg.measure & ~owned) | (bits & owned)
        self._write_config(cfg)

    def set_evidence(self, on: bool) -> None:
        """Whether the counting programs hand their GTP-U frames to the
        evidence tap (sauron.bpf.evidence), which keeps the flagged slices'."""
        self.set_measure_bits(layout.MEASURE_EVIDENCE, layout.MEASURE_EVIDENCE if on else 0)

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
        for name in COUNTER_MAPS:
            self.table(name).clear()  # on arrays: zeroes written
        if self.record_last:
            self.table("last_result").clear()

    def reset_rules(self) -> None:
        """Removes every classification rule and direction override; the
        measurement settings stay."""
        rules = ("teid_slice", "teid_range_slice", "ue4_slice", "ue6_slice", "qfi_slice")
        for name in (*rules, "teid_session"):
            self.table(name).clear()
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


#: the maps that count (what reset_counters zeroes)
COUNTER_MAPS = (
    "slice_stats",
    "qfi_stats",
    "events",
    "teid_slots",
    "ue_slots",
    "measure_stats",
    "latency_hist",
    "transit_slots",
    "transit_last",
    "teid_stats",
    "ue_stats",
    "seq_state",
    "rtt_stamps",
    "tcp_flows",
    "echo_stamps",
    "peer_rtt",
    "security_stats",
    "security_seen",
)


def entry_point_table() -> dict[tuple[int, str, str | None], EntryPoint]:
    """Entry points by (point, link, hook), hook None naming the default."""
    table: dict[tuple[int, str, str | None], EntryPoint] = {}
    for ep in ENTRY_POINTS:
        table[(ep.point, ep.link, ep.hook)] = ep
        table.setdefault((ep.point, ep.link, None), ep)
    return table


class DataPlane(BpfObject, DataPathControl):
    """The Sauron data-plane object: every entry point, shared maps,
    compiled by bcc in this process (tests, replay, the demo; the agent
    opens a pinned one: sauron.bpf.pinned).

    record_last=True builds the variant that stores each frame's parse result
    for the differential tests; production never uses it.
    """

    def __init__(self, record_last: bool = False, cflags: tuple[str, ...] = ()) -> None:
        super().__init__(data_path_sources(), (*record_cflags(record_last), *cflags))
        self.record_last = record_last
        self.entry_points = entry_point_table()
        self._install_measurement()

    def _install_measurement(self) -> None:
        """Loads the measurement programs into the program arrays the entry
        points tail-call; whether they measure is up to sauron_config."""
        for _, function, hook, array, point in MEASURE_PROGRAMS:
            fd = int(self.function(function, hook).fd)
            self.table(array)[ctypes.c_int(point)] = ctypes.c_int(fd)

    def entry_program_fds(self) -> dict[int, list[int]]:
        """Every attach point's loaded programs: the default Ethernet ones
        always, the others once an interface asked for them."""
        fds: dict[int, list[int]] = {}
        for ep in ENTRY_POINTS:
            default = self.entry_points[(ep.point, ep.link, None)] is ep
            if (ep.link == ETHERNET and default) or ep.function in self._functions:
                fds.setdefault(ep.point, []).append(int(self.function(ep.function, ep.hook).fd))
        return fds
