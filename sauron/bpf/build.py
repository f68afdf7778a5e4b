"""Compiling the data plane in a process of its own and pinning it.

`python -m sauron.bpf.build FOLDER [--record-last] [--cflag F ...]
[--with energy|diagnosis|n4 ...]` compiles the data plane with bcc, loads every
program, fills the measurement program arrays, pins every map and program
under FOLDER/build-<identity>, and exits; with --with it does the same for
each companion named (sauron.bpf.companions: the energy probe, the
diagnosis probe, the N4 filter), under FOLDER/<name>-<identity>. The agent that asked
(`build_in_subprocess`) opens the pins and never holds LLVM or clang
(about 80 MB touched while bcc compiles). The pins are published whole: written to a
temporary folder, then renamed, so a build that died half way is never
taken for a data path.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sauron.abi.source import shared_header
from sauron.bpf import libbpf
from sauron.bpf.companions import COMPANIONS, DIAGNOSIS, ENERGY, Companion
from sauron.bpf.loader import BpfObject, DataPlane
from sauron.bpf.pinned import (
    BUILD_PREFIX,
    MAPS,
    PROGRAMS,
    build_flags,
    build_identity,
    every_function,
    make_private_dir,
)
from sauron.bpf.receive_offsets import kernel_receive_offsets
from sauron.bpf.task_offsets import diagnosis_config

log = logging.getLogger(__name__)

#: how long a build may take (a cold compile is 5 to 15 s on 2 CPUs)
BUILD_TIMEOUT_S = 300.0


class BuildFailed(RuntimeError):
    """The build process failed; its error output is in the message."""


def _maps(dp: BpfObject) -> dict[str, int]:
    """Every map the compiled object holds (name, descriptor), as bcc's
    module lists them (bcc's own tables refuse some per-CPU layouts)."""
    import bcc

    lib = bcc.libbcc.lib
    lib.bpf_num_tables.restype = ctypes.c_size_t
    lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
    lib.bpf_table_name.restype = ctypes.c_char_p
    lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    module = dp.bpf.module
    names = [lib.bpf_table_name(module, i) for i in range(lib.bpf_num_tables(module))]
    return {name.decode(): int(lib.bpf_table_fd(module, name)) for name in names}


def remove_tree(path: Path) -> None:
    """Removes a folder of pins (unlinking a pin drops its reference)."""
    shutil.rmtree(path, ignore_errors=True)


GEOMETRY_PREFIX = "geometry-"


def geometry(maps: dict[str, int]) -> str:
    """What the maps' contents mean: the layouts' owner (sauron_shared.h)
    and each map's type, sizes and flags. Two builds of equal geometry can
    count in the same maps."""
    digest = hashlib.sha256(shared_header().read_bytes())
    for name in sorted(maps):
        info = libbpf.map_info(maps[name])
        digest.update(
            f"{name}:{info.map_type}:{info.key_size}:{info.value_size}:"
            f"{info.max_entries}:{info.flags};".encode()
        )
    return digest.hexdigest()[:16]


def geometry_of(build: Path) -> str | None:
    """The geometry a pinned build recorded (a folder named by it)."""
    found = [p.name.removeprefix(GEOMETRY_PREFIX) for p in build.glob(GEOMETRY_PREFIX + "*")]
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Built:
    """What a build made: its folder, and whether it counts in the maps of
    the build it replaces (and if not, why); the folder of each companion
    asked for, or why it could not be built."""

    build: Path
    kept_maps: bool = False
    why_not: str = ""
    companions: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _pin(programs: dict[str, int], staging: Path, maps: dict[str, int]) -> None:
    make_private_dir(staging / MAPS)
    make_private_dir(staging / PROGRAMS)
    for name, fd in maps.items():
        libbpf.obj_pin(fd, str(staging / MAPS / name))
    for function, fd in programs.items():
        libbpf.obj_pin(fd, str(staging / PROGRAMS / function))


def _staging(folder: Path) -> Path:
    make_private_dir(folder)
    staging = folder / f"staging-{os.getpid()}"  # bpffs allows no dot in a name
    remove_tree(staging)
    make_private_dir(staging)
    return staging


def pin_companion(folder: Path, companion: Companion) -> Path:
    """Compiles, loads and pins a companion under `folder`, unattached (the
    agent attaches it, for as long as it runs). The energy probe gets the
    offsets its receive hook reads from the running kernel's BTF."""
    final = folder / companion.folder_name()
    if final.exists():
        return final
    staging = _staging(folder)
    try:
        with BpfObject(list(companion.sources)) as built:
            programs = {f: int(built.function(f, kind).fd) for f, kind in companion.functions}
            if companion is ENERGY:
                offsets, _ = kernel_receive_offsets()
                built.table("receive_offsets")[ctypes.c_uint32(0)] = offsets
            if companion is DIAGNOSIS:
                config, _ = diagnosis_config()
                built.table("diag_config")[ctypes.c_uint32(0)] = config
            _pin(programs, staging, _maps(built))
        staging.rename(final)
    except BaseException:
        remove_tree(staging)
        raise
    return final


def _compile(record_last: bool, extra: tuple[str, ...]) -> DataPlane:
    dp = DataPlane(record_last=record_last, cflags=extra)
    for function, hook in every_function():
        dp.function(function, hook)
    return dp


def pin_build(
    folder: Path,
    record_last: bool = False,
    extra: tuple[str, ...] = (),
    keep_from: Path | None = None,
) -> Built:
    """Compiles, loads and pins one build under `folder`. With `keep_from`
    (the running build it replaces), a build of the same map geometry is
    compiled a second time to count in that build's maps (lib/kept.h), so
    counting goes on across the upgrade; another geometry keeps maps of
    its own, and says why."""
    flags = build_flags(record_last, extra)
    final = folder / f"{BUILD_PREFIX}{build_identity(flags)}"
    if final.exists():
        return Built(final)
    staging = _staging(folder)
    try:
        dp = _compile(record_last, extra)
        maps = _maps(dp)
        shape = geometry(maps)
        kept, why_not = False, ""
        if keep_from is not None:
            old_shape = geometry_of(keep_from)
            if old_shape == shape:
                dp.close()
                kept_dir = staging / "kept"
                make_private_dir(kept_dir)
                for pinned in (keep_from / MAPS).iterdir():
                    fd = libbpf.obj_get(str(pinned))
                    try:
                        libbpf.obj_pin(fd, str(kept_dir / pinned.name))
                    finally:
                        os.close(fd)
                dp = _compile(record_last, (*extra, f'-DSAURON_KEPT_MAPS="{kept_dir}"'))
                maps = _maps(dp)
                kept = True
            else:
                why_not = (
                    f"the map geometry changed ({old_shape or 'unknown'} -> {shape}): "
                    "the new build counts in maps of its own, from zero"
                )
        with dp:
            programs = {f: int(dp.function(f, hook).fd) for f, hook in every_function()}
            _pin(programs, staging, maps)
            make_private_dir(staging / f"{GEOMETRY_PREFIX}{shape}")
            remove_tree(staging / "kept")
            staging.rename(final)
    except BaseException:
        remove_tree(staging)
        raise
    return Built(final, kept, why_not)


def build_in_subprocess(
    folder: Path,
    record_last: bool = False,
    extra: tuple[str, ...] = (),
    keep_from: Path | None = None,
    companions: tuple[str, ...] = (),
) -> Built:
    """Runs pin_build (and pin_companion for each companion named) in a
    child process. A failed build raises BuildFailed with what the child
    said; a companion that cannot be built leaves the data plane built, and
    says why."""
    command = [sys.executable, "-m", "sauron.bpf.build", str(folder)]
    if record_last:
        command.append("--record-last")
    command += [f"--with={name}" for name in companions]
    if keep_from is not None:
        command.append(f"--keep-from={keep_from}")
    command += [f"--cflag={flag}" for flag in extra]
    started = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise BuildFailed(f"building the data path failed: {done.stderr.strip()[-2000:]}")
    said = json.loads(done.stdout.strip().splitlines()[-1])
    built = Built(
        Path(said["build"]),
        said["kept_maps"],
        said["why_not"],
        {name: Path(path) for name, path in said["companions"].items()},
        said["failed"],
    )
    log.info(
        "data path built",
        extra={
            "build": built.build.name,
            "kept_maps": built.kept_maps,
            "companions": sorted(built.companions),
            "failed": built.failed,
            "seconds": round(time.monotonic() - started, 2),
        },
    )
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sauron.bpf.build",
        description="compile the data plane and pin it under FOLDER/build-<identity>",
    )
    parser.add_argument(
        "--with",
        dest="companions",
        action="append",
        default=[],
        choices=sorted(COMPANIONS),
        help="a companion too, under FOLDER/<name>-<identity>",
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--record-last", action="store_true")
    parser.add_argument("--keep-from", type=Path, default=None)
    parser.add_argument("--cflag", action="append", default=[])
    args = parser.parse_args(argv)
    built = pin_build(args.folder, args.record_last, tuple(args.cflag), args.keep_from)
    for name in args.companions:
        companion = COMPANIONS[name]
        try:
            built.companions[name] = pin_companion(args.folder, companion)
        except Exception as exc:  # bcc raises plain Exceptions when a load fails
            built.failed[name] = f"{companion.what} could not be built: {exc}"
    said = {
        "build": str(built.build),
        "kept_maps": built.kept_maps,
        "why_not": built.why_not,
        "companions": {name: str(path) for name, path in built.companions.items()},
        "failed": built.failed,
    }
    print(json.dumps(said))
    return 0


if __name__ == "__main__":
    sys.exit(main())
