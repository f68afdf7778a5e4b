"""Where an interface lives: the network namespace the agent's configuration
names, resolved at start to a namespace file the agent can enter.

A reference is one of:

- ``upf``: a named namespace (``ip netns``), the file /var/run/netns/upf;
- ``/proc/1234/ns/net``, ``/var/run/docker/netns/1f2e``: a namespace file;
- ``pid:1234``: the namespace of a process;
- ``process:open5gs-upfd``: the namespace of the one process with that
  name (its ``comm``; with several, name one by ``pid:``);
- ``container:upf-embb``: a container's, its init process asked of the
  container engine's API (Docker's, or Podman's compatible socket).

A containerised agent needs the host's process table (``pid: host`` in
Compose, ``hostPID`` in Kubernetes) for every form but the first two. The
namespace is resolved once, at start: a container restarted later has a new
namespace, and the agent must be restarted with it.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import re
import socket
import stat
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from pydantic import AfterValidator

NAMED_NETNS_DIR = Path("/var/run/netns")
DOCKER_SOCKET = Path("/var/run/docker.sock")
PROC = Path("/proc")

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
#: printable, no control character (a NUL, a newline)
_PATH = re.compile(r"^/[^\x00-\x1f\x7f]*$")
PATH_MAX = 4096
#: ioctl(NS_GET_NSTYPE) answers a namespace file's kind; CLONE_NEWNET is a network one's
NS_GET_NSTYPE = 0xB703
CLONE_NEWNET = 0x40000000
_KINDS = ("pid", "process", "container")
#: the kernel keeps a process's comm to 15 bytes
COMM_LENGTH = 15


class NamespaceError(Exception):
    """A reference that does not lead to a network namespace."""


def check_reference(ref: str) -> str:
    """The reference if its form is right, else ValueError saying why (for
    the configuration's validators; whether it exists is known at start)."""
    if ref.startswith("/"):
        if len(ref) > PATH_MAX or not _PATH.match(ref) or os.path.normpath(ref) != ref:
            raise ValueError(
                f"{ref!r}: a namespace file's path is absolute and plain "
                "(no '.' or '..' parts, no doubled or trailing '/', no control characters)"
            )
        return ref
    kind, sep, rest = ref.partition(":")
    if ref in (".", "..") or rest in (".", ".."):
        raise ValueError(f"{ref!r} is no namespace: '.' and '..' name folders")
    if not sep:
        if not _NAME.match(ref):
            raise ValueError(
                f"{ref!r} is not a namespace name, a path, pid:N, process:NAME or container:NAME"
            )
        return ref
    if kind not in _KINDS:
        raise ValueError(f"{ref!r}: unknown kind {kind!r} (pid, process or container)")
    if kind == "pid" and not (rest.isdigit() and int(rest) > 0):
        raise ValueError(f"{ref!r}: pid must be a positive number")
    if kind == "process" and not 0 < len(rest) <= COMM_LENGTH:
        raise ValueError(f"{ref!r}: a process name has 1 to {COMM_LENGTH} characters")
    if kind == "container" and not _NAME.match(rest):
        raise ValueError(f"{ref!r}: not a container name or id")
    return ref


#: a configuration field holding a namespace reference
NamespaceRef = Annotated[str, AfterValidator(check_reference)]


def resolve(ref: str | None, docker_socket: Path = DOCKER_SOCKET, proc: Path = PROC) -> str | None:
    """The namespace file of a reference (None: the agent's own namespace; a
    name stays a name, which reads better in logs and the API)."""
    if ref is None:
        return None
    check_reference(ref)
    kind, sep, rest = ref.partition(":")
    if ref.startswith("/") or not sep:
        path = Path(namespace_file(ref))
    elif kind == "pid":
        path = proc / rest / "ns" / "net"
    elif kind == "process":
        path = proc / str(_only_process(rest, proc)) / "ns" / "net"
    else:
        path = proc / str(container_pid(rest, docker_socket)) / "ns" / "net"
    if not path.exists():
        raise NamespaceError(f"{ref!r}: no namespace at {path}")
    check_network_namespace(ref, path)
    return ref if not sep and not ref.startswith("/") else str(path)


def check_network_namespace(ref: str, path: Path) -> None:
    """NamespaceError unless the file is a network namespace's (asked of
    the kernel before the agent ever enters it: /etc/passwd or a mount
    namespace's file are refused, naming what they are)."""
    try:
        # a namespace file reads as a regular file: a FIFO would hang the
        # open, a device's open has effects of its own (a watchdog arms)
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise NamespaceError(f"{ref!r}: {path} is not a namespace file")
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise NamespaceError(f"{ref!r}: cannot open {path}: {exc.strerror}") from None
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        raise NamespaceError(f"{ref!r}: {path} is not a namespace file") from None
    finally:
        os.close(fd)
    if kind != CLONE_NEWNET:
        raise NamespaceError(f"{ref!r}: {path} is a namespace, not a network one")


def _only_process(name: str, proc: Path) -> int:
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().rstrip("\n")
        except OSError:
            continue  # gone since the listing
        if comm == name:
            pids.append(int(entry.name))
    if not pids:
        raise NamespaceError(
            f"process:{name}: no process of that name"
            " (a containerised agent needs the host's process table)"
        )
    if len(pids) > 1:
        raise NamespaceError(
            f"process:{name}: {len(pids)} processes of that name"
            f" ({', '.join(map(str, sorted(pids)))}); name one as pid:N"
        )
    return pids[0]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.socket_path))
        self.sock = sock


def container_pid(name: str, docker_socket: Path = DOCKER_SOCKET, timeout: float = 5.0) -> int:
    """A running container's init process, from the engine's
    `GET /containers/{name}/json`."""
    conn = _UnixConnection(docker_socket, timeout)
    try:
        conn.request("GET", f"/containers/{quote(name, safe='')}/json")
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        raise NamespaceError(
            f"container:{name}: no container engine at {docker_socket} ({exc.strerror or exc})"
        ) from None
    finally:
        conn.close()
    if response.status == 404:
        raise NamespaceError(
            f"container:{name}: the engine at {docker_socket} has no such container"
        )
    if response.status != 200:
        raise NamespaceError(
            f"container:{name}: the engine at {docker_socket} answered {response.status}"
        )
    try:
        state = json.loads(body)["State"]
        pid, running = int(state["Pid"]), bool(state["Running"])
    except (ValueError, KeyError, TypeError):
        raise NamespaceError(f"container:{name}: the engine's answer has no State.Pid") from None
    if not running or pid <= 0:
        raise NamespaceError(f"container:{name}: not running")
    return pid


def namespace_file(resolved: str | None) -> str:
    """The file of a resolved reference's namespace: a path as it is, a name
    under /var/run/netns (None: the calling thread's own)."""
    if resolved is None:
        return "/proc/thread-self/ns/net"
    return resolved if resolved.startswith("/") else str(NAMED_NETNS_DIR / resolved)


def namespace_identity(resolved: str | None) -> tuple[int, int]:
    """(device, inode) of a resolved reference's namespace file (None: the
    agent's own): equal for two references to one namespace."""
    found = os.stat(namespace_file(resolved))
    return found.st_dev, found.st_ino
