"""What the agent needs of its host, in one place: the capabilities it uses
and the host paths it reads, each with the reason. `sauron doctor` checks
them, the deployments (deploy/open5gs, deploy/k8s) grant them, and the
tests hold the deployments to this list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capability:
    name: str  # capabilities(7) without CAP_, as Compose and Kubernetes spell it
    bit: int  # uapi/linux/capability.h
    needed_for: str


@dataclass(frozen=True)
class HostPath:
    name: str
    path: str  # on the host and in the agent's container alike
    read_only: bool
    needed_for: str
    fstype: str | None = None  # the filesystem expected mounted there
    required: bool = True  # False: only some features need it


CAPABILITIES: tuple[Capability, ...] = (
    Capability("BPF", 39, "maps and programs (bpf())"),
    Capability(
        "PERFMON",
        38,
        "the energy probe's tracepoint programs, and the pointer arithmetic the "
        "verifier allows data-path programs only with it",
    ),
    Capability("NET_ADMIN", 12, "attaching XDP and TC (tcx) programs; reading links"),
    Capability("NET_RAW", 13, "the N4 watch's packet socket (AF_PACKET), which sees PFCP"),
    Capability(
        "SYS_ADMIN",
        21,
        "entering the UPF's network namespace (setns); the kernel's program run-time "
        "statistics (BPF_ENABLE_STATS) for the energy estimator",
    ),
    Capability(
        "SYS_PTRACE",
        19,
        "opening /proc/PID/ns/net of processes the agent did not start "
        "(pid:, process: and container: references)",
    ),
    Capability(
        "SYS_RESOURCE",
        24,
        "raising the locked-memory limit, to which kernels before 5.11 charge the maps",
    ),
)

HOST_PATHS: tuple[HostPath, ...] = (
    HostPath(
        "bpffs",
        "/sys/fs/bpf",
        False,
        "bpffs: the agent pins its data path there (sauron/ under it), so that it "
        "counts on while the agent restarts or is upgraded",
        "bpf",
    ),
    HostPath(
        "agent state",
        "/run/sauron",
        False,
        "the agent's last reading of its pinned data path, so that the first interval "
        "after a restart covers the time no agent ran",
        required=False,
    ),
    HostPath(
        "tracefs",
        "/sys/kernel/tracing",
        True,
        "tracefs: bcc finds the scheduler and softirq tracepoints there (energy)",
        "tracefs",
        required=False,
    ),
    HostPath(
        "kernel headers",
        "/lib/modules",
        True,
        "the running kernel's headers (its build link), which bcc compiles the programs against",
    ),
    HostPath(
        "kernel sources", "/usr/src", True, "where the build link points on Debian and Ubuntu hosts"
    ),
    HostPath(
        "named namespaces",
        "/var/run/netns",
        True,
        "namespaces by name (ip netns) or by a file there (CNI plugins keep pods' there)",
        required=False,
    ),
)
