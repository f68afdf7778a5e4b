"""The data plane as objects pinned under bpffs, opened through libbpf.

A short-lived process compiles the data plane with bcc and pins its maps
and programs (sauron.bpf.build); the long-lived agent opens the pins here,
so LLVM and clang never enter its memory, and a data path left counting by
an agent that stopped or died is taken over by the next one.

A node's pins live in one folder per agent configuration (`pin_folder`),
owner-only; each build in a folder of its own named by its identity (the
hash of everything that went into it: sources, flags, CPU count), so a
start can tell a data path it may adopt from one it must replace.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sauron.abi.source import assemble
from sauron.bpf import libbpf
from sauron.bpf.loader import (
    ENTRY_POINTS,
    MEASURE_PROGRAMS,
    TRANSIT_EXPIRY_PROGRAM,
    DataPathControl,
    data_path_sources,
    entry_point_table,
    record_cflags,
)
from sauron.bpf.mapped import MappedArray

#: where every Sauron agent on the node pins its data path
PIN_ROOT = Path("/sys/fs/bpf/sauron")
#: a build's folder in its agent's pin folder: build-<identity>
BUILD_PREFIX = "build-"
MAPS, PROGRAMS = "maps", "programs"


def build_flags(record_last: bool = False, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The compiler flags a data path is built with, beyond the loader's
    fixed ones: the CPU count the CPU-major arrays are sized for, then the
    variant's."""
    return (f"-DSAURON_CPUS={libbpf.possible_cpus()}", *record_cflags(record_last), *extra)


def build_identity(flags: tuple[str, ...]) -> str:
    """The hash of a build's sources (with every header, as compiled) and
    flags: equal identities are the same programs over the same map
    geometry (the geometry is in the sources)."""
    digest = hashlib.sha256(assemble(data_path_sources()).encode())
    digest.update("\0".join(flags).encode())
    return digest.hexdigest()[:16]


def pin_folder(node: str, config: Path | None) -> Path:
    """The folder of one agent's pins: its node and its configuration file
    (two agents with different configurations never share one)."""
    safe_node = re.sub(r"[^A-Za-z0-9_-]", "_", node) or "node"  # bpffs: no dots
    where = str(config.resolve()) if config is not None else "(no file)"
    return PIN_ROOT / f"{safe_node}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


def builds_in(folder: Path) -> list[str]:
    """The identities of the builds pinned in an agent's folder."""
    if not folder.is_dir():
        return []
    return sorted(p.name.removeprefix(BUILD_PREFIX) for p in folder.glob(BUILD_PREFIX + "*"))


def make_private_dir(path: Path) -> None:
    """A folder only its owner may enter (bpffs keeps the mode)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


class PinnedMap:
    """A pinned map with the part of bcc's table interface the agent uses:
    get, set and delete an entry by a ctypes key, clear, and the map's
    descriptor and size. Keys and values are raw bytes of the kernel's
    sizes (`Key`, `Leaf`); callers give the layout's structs
    (sauron.abi.layout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.map_fd = libbpf.obj_get(str(path))
        info = libbpf.map_info(self.map_fd)
        self.name = path.name
        self.map_type = info.map_type
        self.max_entries = info.max_entries
        self.key_size, self.value_size = info.key_size, info.value_size
        self.Key = ctypes.c_ubyte * info.key_size
        self.Leaf = ctypes.c_ubyte * info.value_size
        self.percpu = info.map_type in libbpf.PERCPU_MAP_TYPES
        #: the value as the kernel reads and writes it (per CPU: each CPU's)
        self.value_bytes = (
            libbpf.percpu_stride(info.value_size) * libbpf.possible_cpus()
            if self.percpu
            else info.value_size
        )

    def _key(self, key: Any) -> bytes:
        raw = bytes(key)
        if len(raw) != self.key_size:
            raise ValueError(f"map {self.name}: a {len(raw)}-byte key, not {self.key_size}")
        return raw

    def __getitem__(self, key: Any) -> Any:
        raw = libbpf.lookup_elem(self.map_fd, self._key(key), self.value_bytes)
        if raw is None:
            raise KeyError(key)
        if self.percpu:
            return raw
        return self.Leaf.from_buffer_copy(raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        raw = bytes(value)
        if len(raw) != self.value_bytes:
            raise ValueError(f"map {self.name}: a {len(raw)}-byte value, not {self.value_bytes}")
        libbpf.update_elem(self.map_fd, self._key(key), raw)

    def __delitem__(self, key: Any) -> None:
        if self.map_type in libbpf.ARRAY_MAP_TYPES:
            self[key] = bytes(self.value_bytes)
        elif not libbpf.delete_elem(self.map_fd, self._key(key)):
            raise KeyError(key)

    def __iter__(self) -> Iterator[bytes]:
        """The keys, as bcc's tables give them (here as bytes)."""
        key = libbpf.next_key(self.map_fd, None, self.key_size)
        while key is not None:
            yield key
            key = libbpf.next_key(self.map_fd, key, self.key_size)

    def clear(self) -> None:
        """Arrays: every value zeroed; other maps: every entry removed."""
        if self.map_type in libbpf.ARRAY_MAP_TYPES:
            zero = bytes(self.value_bytes)
            for index in range(self.max_entries):
                libbpf.update_elem(self.map_fd, index.to_bytes(4, "little"), zero)
            return
        for key in list(self):
            libbpf.delete_elem(self.map_fd, key)

    def close(self) -> None:
        if self.map_fd >= 0:
            os.close(self.map_fd)
            self.map_fd = -1


@dataclass
class PinnedProgram:
    """A pinned program's descriptor and name, as bcc's function gives them."""

    fd: int
    name: bytes


class PinnedDataPlane(DataPathControl):
    """A data plane built and pinned by another process, opened from its
    build folder: the maps and programs of `DataPlane`, without bcc."""

    def __init__(self, build: Path, record_last: bool = False) -> None:
        if not (build / MAPS).is_dir():
            raise FileNotFoundError(f"no pinned data path in {build}")
        self.build = build
        self.record_last = record_last
        self.entry_points = entry_point_table()
        self._tables: dict[str, PinnedMap] = {}
        self._functions: dict[str, PinnedProgram] = {}
        self._mapped: dict[str, MappedArray] = {}

    @property
    def identity(self) -> str:
        return self.build.name.removeprefix(BUILD_PREFIX)

    def table(self, name: str) -> PinnedMap:
        if name not in self._tables:
            self._tables[name] = PinnedMap(self.build / MAPS / name)
        return self._tables[name]

    def map_fd(self, name: str) -> int:
        return self.table(name).map_fd

    def mapped(self, name: str, value_type: type[Any], cpu_major: bool = True) -> MappedArray:
        if name not in self._mapped:
            self._mapped[name] = MappedArray(self.table(name), value_type, cpu_major)
        return self._mapped[name]

    def function(self, name: str, hook: str) -> PinnedProgram:
        if name not in self._functions:
            fd = libbpf.obj_get(str(self.build / PROGRAMS / name))
            self._functions[name] = PinnedProgram(fd, name.encode())
        return self._functions[name]

    def entry_program_fds(self) -> dict[int, list[int]]:
        """Every entry program of the build, by attach point."""
        fds: dict[int, list[int]] = {}
        for ep in ENTRY_POINTS:
            fds.setdefault(ep.point, []).append(self.function(ep.function, ep.hook).fd)
        return fds

    def close(self) -> None:
        for array in self._mapped.values():
            array.close()
        self._mapped.clear()
        for table in self._tables.values():
            table.close()
        self._tables.clear()
        for program in self._functions.values():
            os.close(program.fd)
        self._functions.clear()

    def __enter__(self) -> PinnedDataPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def every_function() -> list[tuple[str, str]]:
    """(function, hook) of every program a build loads and pins."""
    functions = [(ep.function, ep.hook) for ep in ENTRY_POINTS]
    functions += [(m[1], m[2]) for m in MEASURE_PROGRAMS]
    functions.append((TRANSIT_EXPIRY_PROGRAM[1], "xdp"))
    return functions
