"""What the diagnosis probe reads of the running kernel: where task_struct
keeps a thread's and its process's ids (from the kernel's BTF, read by the
build, as sauron.bpf.receive_offsets does for the energy probe), and the
futex system call numbers of this machine's architecture."""

from __future__ import annotations

import platform
from pathlib import Path

from sauron.abi import diagnosis_layout
from sauron.bpf.btf import VMLINUX, BtfError, read_kernel_types

#: architecture -> (futex, futex_waitv) system call numbers
#: (arch/x86/entry/syscalls/syscall_64.tbl; include/uapi/asm-generic/unistd.h)
FUTEX_CALLS = {"x86_64": (202, 449), "aarch64": (98, 449)}


def diagnosis_config(
    btf_path: Path = VMLINUX, machine: str | None = None
) -> tuple[diagnosis_layout.Config, str]:
    """The probe's configuration, with "" (or one marked unknown, and why:
    the sched and futex hooks then stay idle)."""
    arch = machine or platform.machine()
    if arch not in FUTEX_CALLS:
        return diagnosis_layout.Config(), f"no futex call numbers known for {arch}"
    try:
        types = read_kernel_types(btf_path)
        pid = types.offset("task_struct", "pid")
        tgid = types.offset("task_struct", "tgid")
    except BtfError as exc:
        return diagnosis_layout.Config(), str(exc)
    futex, futex_waitv = FUTEX_CALLS[arch]
    return diagnosis_layout.Config(pid, tgid, futex, futex_waitv, 1, 0), ""
