"""`sauron doctor`: what this host can do for Sauron, each check with a
verdict and a one-line reason, and what to do when something is missing."""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import re
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from sauron.host.access import CAPABILITIES, HOST_PATHS
from sauron.host.checks import FAIL, PASS, Check
from sauron.host.perf_events import PERF_COUNT_HW_CPU_CYCLES, PERF_TYPE_HARDWARE, perf_event_open
from sauron.service.dashboard.routes import VENDOR, missing_assets


def _mounted(path: str, fstype: str) -> bool:
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == path and parts[2] == fstype:
                return True
    except OSError:
        pass
    return False


def check_kernel() -> Check:
    release = platform.release()
    match = re.match(r"(\d+)\.(\d+)", release)
    version = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    ok = version >= (5, 15)
    return Check(
        "kernel",
        PASS if ok else FAIL,
        True,
        f"Linux {release}" + ("" if ok else ", 5.15 or newer needed"),
        "" if ok else "run a kernel of 5.15 or newer (bounded loops, LPM tries, coarse clock)",
    )


def check_btf() -> Check:
    ok = Path("/sys/kernel/btf/vmlinux").exists()
    return Check(
        "btf",
        PASS if ok else FAIL,
        False,
        "/sys/kernel/btf/vmlinux present" if ok else "kernel built without BTF",
        "" if ok else "BTF is optional for bcc; nothing to do",
    )


def check_bpf_syscall() -> Check:
    from sauron.bpf import libbpf

    lib = libbpf.library()
    lib.bpf_map_create.restype = ctypes.c_int
    lib.bpf_map_create.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_void_p,
    ]
    fd = lib.bpf_map_create(2, b"sauron_probe", 4, 8, 1, None)  # BPF_MAP_TYPE_ARRAY
    if fd >= 0:
        os.close(fd)
        return Check("bpf_syscall", PASS, True, "created a BPF array map")
    code = -fd if fd < -1 else ctypes.get_errno()
    return Check(
        "bpf_syscall",
        FAIL,
        True,
        f"bpf(BPF_MAP_CREATE) failed: {os.strerror(code)}",
        "run as root (or with CAP_BPF) on a kernel with CONFIG_BPF_SYSCALL",
    )


def check_jit() -> Check:
    try:
        value = Path("/proc/sys/net/core/bpf_jit_enable").read_text().strip()
    except OSError:
        return Check("jit", FAIL, False, "bpf_jit_enable not readable", "")
    ok = value in ("1", "2")
    return Check(
        "jit",
        PASS if ok else FAIL,
        False,
        f"net.core.bpf_jit_enable={value}",
        "" if ok else "sysctl -w net.core.bpf_jit_enable=1 (the interpreter is far slower)",
    )


def check_mount(name: str, path: str, fstype: str, required: bool) -> Check:
    ok = _mounted(path, fstype)
    return Check(
        name,
        PASS if ok else FAIL,
        required,
        f"{fstype} {'mounted' if ok else 'not mounted'} at {path}",
        "" if ok else f"mount -t {fstype} {fstype} {path} (make setup does)",
    )


def check_compile() -> tuple[Check, Any]:
    from sauron.bpf.loader import BpfObject

    try:
        obj = BpfObject(["frame_counter.c"])
        obj.function("count_xdp", "xdp")
        obj.function("count_tc", "tc")
    except Exception as exc:
        return Check(
            "bcc_compile",
            FAIL,
            True,
            f"bcc could not build sauron/bpf/c/probes/frame_counter.c: {str(exc).splitlines()[0]}",
            "install python3-bpfcc and linux-headers-amd64, link /lib/modules/$(uname -r)/build (make setup does)",
        ), None
    return Check(
        "bcc_compile", PASS, True, "bcc compiled and loaded sauron/bpf/c/probes/frame_counter.c"
    ), obj


def check_attach(obj: Any) -> list[Check]:
    """XDP links (generic and native) and tcx links, as the agent attaches,
    on a veth in a scratch namespace; and a pin under bpffs, where the
    agent keeps its data path."""
    from sauron.bpf.links import Links, tcx_available
    from sauron.host.netns import Topology

    checks: list[Check] = []
    if obj is None:
        reason = "skipped: no program could be compiled"
        return [
            Check(n, FAIL, r, reason)
            for n, r in (("xdp_generic", True), ("xdp_native_veth", False), ("tcx", True))
        ]
    xdp_fd, tc_fd = int(obj.function("count_xdp", "xdp").fd), int(obj.function("count_tc", "tc").fd)
    with Topology(prefix="srdoc") as topo:
        a = topo.namespace("a")
        b = topo.namespace("b")
        topo.veth(a, "eth0", "192.0.2.1/30", b, "eth0", "192.0.2.2/30")
        for name, generic, required in (
            ("xdp_generic", True, True),
            ("xdp_native_veth", False, False),
        ):
            try:
                with Links() as links:
                    links.attach_xdp(b, "eth0", xdp_fd, generic=generic)
                mode = "generic" if generic else "native"
                checks.append(
                    Check(
                        name,
                        PASS,
                        required,
                        f"attached and detached an XDP link ({mode}) on a veth",
                    )
                )
            except Exception as exc:
                checks.append(
                    Check(
                        name,
                        FAIL,
                        required,
                        f"XDP attach failed: {exc}",
                        "use a kernel with XDP support",
                    )
                )
        try:
            with Links() as links:
                links.attach_tcx(a, "eth0", tc_fd, "ingress")
                links.attach_tcx(a, "eth0", tc_fd, "egress")
            how = (
                "tcx links"
                if tcx_available()
                else "clsact filters (this kernel has no tcx, which came in 6.6)"
            )
            checks.append(
                Check("tcx", PASS, True, f"attached and detached {how} (ingress, egress) on a veth")
            )
        except Exception as exc:
            checks.append(
                Check(
                    "tcx",
                    FAIL,
                    True,
                    f"tcx attach failed: {exc}",
                    "use a kernel of 6.6 or later (tcx: TC programs through links)",
                )
            )
    checks.append(check_pin(int(obj.map_fd("frame_counts"))))
    return checks


def check_pin(map_fd: int) -> Check:
    """A map pinned under /sys/fs/bpf/sauron and opened again, as the agent
    keeps its data path."""
    from sauron.bpf import libbpf
    from sauron.bpf.pinned import PIN_ROOT

    path = PIN_ROOT / f"doctor-{os.getpid()}"
    try:
        PIN_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
        libbpf.obj_pin(map_fd, str(path))
        os.close(libbpf.obj_get(str(path)))
    except OSError as exc:
        return Check(
            "bpf_pin",
            FAIL,
            True,
            f"cannot pin under {PIN_ROOT}: {exc}",
            "mount bpffs at /sys/fs/bpf, writable (make setup does; a container needs it mounted)",
        )
    finally:
        path.unlink(missing_ok=True)
    return Check("bpf_pin", PASS, True, f"pinned a map under {PIN_ROOT} and opened it again")


def check_tracepoints() -> Check:
    from sauron.bpf.loader import _bcc

    bcc = _bcc()
    missing = []
    for tp in ("sched:sched_switch", "irq:softirq_entry", "irq:softirq_exit"):
        category, event = tp.split(":")
        if not Path(f"/sys/kernel/tracing/events/{category}/{event}").exists():
            missing.append(tp)
    if missing:
        return Check(
            "tracepoints",
            FAIL,
            False,
            "not found in tracefs: " + ", ".join(missing),
            "mount tracefs at /sys/kernel/tracing (make setup does)",
        )
    try:
        b = bcc.BPF(text=b"TRACEPOINT_PROBE(sched, sched_switch) { return 0; }")
        b.cleanup()
    except Exception as exc:
        return Check(
            "tracepoints", FAIL, False, f"attaching to sched:sched_switch failed: {exc}", ""
        )
    return Check(
        "tracepoints",
        PASS,
        False,
        "sched_switch and softirq_entry/exit exist; a program attached to sched_switch",
    )


def check_bpf_stats() -> Check:
    path = Path("/proc/sys/kernel/bpf_stats_enabled")
    try:
        before = path.read_text().strip()
        path.write_text("1")
        path.write_text(before)
    except OSError as exc:
        return Check(
            "bpf_stats",
            FAIL,
            False,
            f"cannot set kernel.bpf_stats_enabled: {exc.strerror}",
            "run as root; the energy estimator needs BPF run-time statistics",
        )
    return Check(
        "bpf_stats", PASS, False, f"kernel.bpf_stats_enabled can be set (now {before}, restored)"
    )


def check_cycle_counters() -> Check:
    fd = perf_event_open(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES)
    if fd >= 0:
        os.close(fd)
        return Check("cycle_counters", PASS, False, "perf hardware cycle counter opened")
    reason = os.strerror(-fd)
    if -fd in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV):
        reason = "no hardware cycle counter (a virtual machine without a PMU?)"
    return Check(
        "cycle_counters",
        FAIL,
        False,
        f"{reason}; energy uses on-CPU time x clock frequency instead",
    )


def rapl_sources(
    powercap: Path = Path("/sys/class/powercap"),
    perf_power: Path = Path("/sys/bus/event_source/devices/power"),
) -> list[str]:
    """Energy counters that exist and return non-zero energy."""
    found: list[str] = []
    if powercap.is_dir():
        for zone in sorted(powercap.glob("intel-rapl:*")):
            try:
                if int((zone / "energy_uj").read_text().strip()) > 0:
                    found.append(str(zone / "energy_uj"))
            except (OSError, ValueError):
                continue
    if (perf_power / "type").exists():
        found.append(str(perf_power))
    return found


def check_rapl() -> Check:
    sources = rapl_sources()
    if sources:
        return Check("rapl", PASS, False, "energy counters: " + ", ".join(sources))
    return Check(
        "rapl",
        FAIL,
        False,
        "no RAPL (no powercap energy_uj, no perf power events); energy uses a CPU power profile from energy/",
    )


def check_energy_model() -> Check:
    """Which cycle source and which power model the energy estimator uses here."""
    from sauron.energy.meter import detect_setup
    from sauron.energy.profiles import ProfileError

    try:
        setup = detect_setup()
    except (OSError, ProfileError) as exc:
        return Check("energy_model", FAIL, False, f"the energy estimator cannot run: {exc}")
    try:
        if setup.counter is not None:
            model = f"{setup.counter.method} ({setup.counter.source})"
        else:
            model = f"profile {setup.profile.name} ({setup.profile_reason})"
        return Check(
            "energy_model",
            PASS,
            False,
            f"cycles from on-CPU time x {setup.frequency.source}; joules from {model}",
        )
    finally:
        setup.frequency.close()
        if setup.counter is not None:
            setup.counter.close()


def effective_capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def check_capabilities() -> Check:
    """Loading and attaching needs CAP_NET_ADMIN and either CAP_SYS_ADMIN or
    CAP_BPF with CAP_PERFMON; the others serve features, and are listed."""
    caps = effective_capabilities()
    have = {c.name: bool(caps & (1 << c.bit)) for c in CAPABILITIES}
    ok = have["NET_ADMIN"] and (have["SYS_ADMIN"] or (have["BPF"] and have["PERFMON"]))
    listed = ", ".join(f"CAP_{n}={'yes' if v else 'no'}" for n, v in have.items())
    lacking = [f"CAP_{c.name} ({c.needed_for})" for c in CAPABILITIES if not have[c.name]]
    return Check(
        "capabilities",
        PASS if ok else FAIL,
        True,
        listed,
        "grant " + "; ".join(lacking) if lacking else "",
    )


def check_dashboard() -> Check:
    """Not required: the agent measures without its page."""
    missing = missing_assets()
    return Check(
        "dashboard",
        FAIL if missing else PASS,
        False,
        f"missing {', '.join(missing)} in {VENDOR}" if missing else "front-end files installed",
        "run `make setup` (installs them from web/package-lock.json)" if missing else "",
    )


#: the longest one check may take (compiling the programs takes seconds on
#: a busy host); beyond it the check fails and the doctor goes on
CHECK_TIMEOUT_S = 120.0
T = TypeVar("T")


def bounded(
    name: str,
    run: Callable[[], T],
    failed: Callable[[Check], T],
    timeout_s: float = CHECK_TIMEOUT_S,
) -> T:
    """run() in a thread of its own for at most `timeout_s`: what it
    returns, or, when it hangs or raises, `failed` of a failed check that
    says so. A check that never answers (a stuck mount, a driver) leaves
    its thread behind, never the doctor waiting; an error is a verdict,
    never a traceback."""
    result: list[T] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.append(run())
        except Exception as exc:
            error.append(exc)

    thread = threading.Thread(target=work, name=f"doctor-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if result:
        return result[0]
    if error:
        reason = f"the check failed: {type(error[0]).__name__}: {error[0]}"
    else:
        reason = f"no answer within {timeout_s:g} s"
    return failed(
        Check(name, FAIL, True, reason, "run the doctor again; if it persists, report it")
    )


def check_pinned_data_paths() -> Check:
    """Data paths pinned under bpffs: each run by an agent, or left counting
    by one that stopped with --keep-datapath, crashed or was killed (the
    next start with its configuration adopts it)."""
    from sauron.agent.config import DataPathConfig
    from sauron.commands.detach import pinned_data_paths

    found = pinned_data_paths(DataPathConfig().state_dir)
    left = [f for f in found if f.agent is None]
    if not left:
        running = f"{len(found)} run by an agent" if found else "none"
        return Check("pinned_data_paths", PASS, False, f"data paths pinned: {running}")
    return Check(
        "pinned_data_paths",
        FAIL,
        False,
        "left counting with no agent: " + "; ".join(f.describe() for f in left),
        "start the agent with that configuration to adopt it, "
        "or remove it: sauron detach --config FILE (or --all)",
    )


def run_checks(timeout_s: float = CHECK_TIMEOUT_S) -> list[Check]:
    def one(name: str, run: Callable[[], Check]) -> Check:
        return bounded(name, run, lambda c: c, timeout_s)

    checks = [
        one("kernel", check_kernel),
        one("capabilities", check_capabilities),
        one("btf", check_btf),
        one("bpf_syscall", check_bpf_syscall),
        one("jit", check_jit),
    ]
    checks.extend(
        one(h.name, functools.partial(check_mount, h.name, h.path, h.fstype, h.required))
        for h in HOST_PATHS
        if h.fstype is not None
    )
    compile_check, obj = bounded("bcc_compile", check_compile, lambda c: (c, None), timeout_s)
    checks.append(compile_check)
    runners: list[tuple[str, Callable[[], Check]]] = [
        ("tracepoints", check_tracepoints),
        ("bpf_stats", check_bpf_stats),
        ("cycle_counters", check_cycle_counters),
        ("rapl", check_rapl),
        ("energy_model", check_energy_model),
        ("dashboard", check_dashboard),
        ("pinned_data_paths", check_pinned_data_paths),
    ]
    try:
        checks.extend(bounded("attach", lambda: check_attach(obj), lambda c: [c], timeout_s))
    finally:
        if obj is not None:
            obj.close()
    checks.extend(one(name, r) for name, r in runners)
    return checks


def report(checks: list[Check]) -> dict[str, Any]:
    missing = [c.name for c in checks if c.required and c.status == FAIL]
    return {"ok": not missing, "missing": missing, "checks": [asdict(c) for c in checks]}


def format_checks(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        mark = "ok  " if c.status == PASS else ("FAIL" if c.required else "no  ")
        lines.append(f"[{mark}] {c.name:<16} {c.reason}")
        if c.status == FAIL and c.remedy:
            lines.append(f"       {'':<16} -> {c.remedy}")
    missing = [c.name for c in checks if c.required and c.status == FAIL]
    lines.append("")
    lines.append(
        "everything the agent needs is here"
        if not missing
        else "missing what the agent needs: " + ", ".join(missing)
    )
    return "\n".join(lines)
