"""Network functions running on this host, found in /proc: a process by
its name (its comm, or its executable's base name), the configuration file
it was started with (`-c FILE`, else its default), and the network
namespace it runs in, named as an agent configuration can name it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from sauron.host.namespace_ref import NAMED_NETNS_DIR, PROC


@dataclass(frozen=True)
class NfProcess:
    pid: int
    name: str
    #: the configuration file as the process names it (its own view)
    config: Path
    #: how the file was found: "its command line (-c)" or "Open5GS's default"
    config_from: str
    #: where the file is readable from here (through /proc/PID/root when the
    #: process sees another file system)
    readable_config: Path
    #: the namespace as a configuration names it (None: the agent's own)
    netns: str | None
    #: how it was named, in words
    netns_said: str


def _cmdline(pid_dir: Path) -> list[str]:
    try:
        raw = (pid_dir / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _named(pid_dir: Path, name: str) -> bool:
    try:
        if (pid_dir / "comm").read_text().rstrip("\n") == name:
            return True
    except OSError:
        return False
    try:
        return os.path.basename(os.readlink(pid_dir / "exe")).removesuffix(" (deleted)") == name
    except OSError:
        return False


def config_option(argv: list[str]) -> str | None:
    """FILE of `-c FILE` or `-cFILE` (Open5GS's option), the last given."""
    found = None
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "-c" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--"):
            found = arg[2:]
    return found


def namespace_of(
    pid: int, name: str, unique: bool, proc: Path = PROC, named_dir: Path = NAMED_NETNS_DIR
) -> tuple[str | None, str]:
    """How a configuration names the process's network namespace: None when
    it is ours, its ip-netns name when it has one, else process:NAME (the
    one process of that name, resolved at each start) or pid:N."""
    theirs = os.stat(proc / str(pid) / "ns" / "net")
    ours = os.stat(proc / "self" / "ns" / "net")
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
        return None, "the agent's own namespace (the host's)"
    try:
        entries = sorted(named_dir.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        try:
            found = os.stat(entry)
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (theirs.st_dev, theirs.st_ino):
            return entry.name, f"namespace {entry.name} ({named_dir / entry.name})"
    if unique:
        return f"process:{name}", f"the namespace of process {name} (pid {pid}; it has no name)"
    return f"pid:{pid}", f"the namespace of pid {pid} (it has no name; pid changes on restart)"


def find_processes(
    name: str, default_config: Path, unread: list[str], proc: Path = PROC
) -> list[NfProcess]:
    """Every process of that name, lowest pid first; `unread` gets the ones
    whose namespace could not be read (not root: another user's process)."""
    pids = sorted(
        int(entry.name) for entry in proc.iterdir() if entry.name.isdigit() and _named(entry, name)
    )
    found: list[NfProcess] = []
    for pid in pids:
        pid_dir = proc / str(pid)
        argv = _cmdline(pid_dir)
        given = config_option(argv)
        if given is None:
            config, said = default_config, "Open5GS's default (no -c on its command line)"
        else:
            config, said = Path(given), "its command line (-c)"
            if not config.is_absolute():
                with contextlib.suppress(OSError):  # gone: the name as given
                    config = Path(os.readlink(pid_dir / "cwd")) / config
        through_root = pid_dir / "root" / str(config).lstrip("/")
        readable = through_root if through_root.exists() else config
        try:
            netns, netns_said = namespace_of(pid, name, len(pids) == 1, proc)
        except OSError as exc:  # gone since the listing, or not ours to read
            if (pid_dir / "comm").exists():
                unread.append(f"{name} (pid {pid}): its namespace: {exc.strerror} (run as root)")
            continue
        found.append(NfProcess(pid, name, config, said, readable, netns, netns_said))
    return found
