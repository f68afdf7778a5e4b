"""The agent's promises where an operator meets them: a real `sauron run`
process on loopback, driven with the faults, clients and inputs that once
stalled it, lost points or answered 500."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from agent_process import (
    REPO,
    agent_config,
    start_agent,
    stop_agent,
    unix_get_json,
    veth_namespace,
)
from timeseries import VictoriaMetrics

from sauron.agent.run import claim_socket_path, remove_own_socket

pytestmark = [pytest.mark.kernel, pytest.mark.netns]


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read().decode()


def _until(conn: http.client.HTTPConnection, path: str, status: int, within_s: float) -> str:
    deadline = time.monotonic() + within_s
    while True:
        got, body = _get(conn, path)
        if got == status:
            return body
        assert time.monotonic() < deadline, f"{path}: {got} {body}"
        time.sleep(0.2)


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_an_agent_out_of_file_descriptors_says_so_and_measures_again(tmp_path: Path) -> None:
    """Every tick reads /proc and /sys for the energy estimate; with no
    file descriptor left the reading fails. The agent must stay up, count
    the failures, turn /readyz to 503 with the cause, and measure again once
    descriptors are back."""
    with veth_namespace(f"sauron-fd-{os.getpid()}") as ns:
        config = agent_config(
            tmp_path / "agent.yaml",
            ns,
            energy={"enabled": True, "watch": [{"name": "open5gs-upfd"}]},
        )
        proc, url = start_agent(config)
        try:
            # one connection opened before the descriptors run out
            conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
            _until(conn, "/readyz", 200, within_s=20)
            limits = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
            resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (3, limits[1]))
            try:
                body = json.loads(_until(conn, "/readyz", 503, within_s=20))
                _, metrics = _get(conn, "/metrics")
            finally:
                resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, limits)
            # the cause, as the first reading that failed reported it
            assert body["status"].startswith("tick failed"), body
            assert "OSError" in body["status"], body
            assert _metric(metrics, "sauron_tick_failures_total") >= 3
            frozen = body["last_interval"]
            again = json.loads(_until(conn, "/readyz", 200, within_s=20))
            assert again["last_interval"] > frozen
            conn.close()
        finally:
            out = stop_agent(proc)
        assert proc.returncode == 0, out
        assert "failed, tried again next interval" in out and "works again" in out


def _sauron(*args: str, within_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauron", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=within_s,
    )


PASSWORD = "s3cret-Pa55"


def test_a_password_in_the_influx_url_is_shown_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """user:password@ in the URL (a proxy's basic auth): the points are
    written, and /readyz, the agent's log and the doctor show user:***@."""
    srv = VictoriaMetrics(tmp_path / "vm")
    srv.start()
    url = srv.url.replace("http://", f"http://writer:{PASSWORD}@")
    influx = {
        "url": url,
        "org": srv.org,
        "bucket": srv.bucket,
        "spool_dir": str(tmp_path / "spool"),
        "flush_interval_s": 0.2,
    }
    try:
        with veth_namespace(f"sauron-pw-{os.getpid()}") as ns:
            config = agent_config(tmp_path / "agent.yaml", ns, influx=influx)
            monkeypatch.setenv("SAURON_LOG_LEVEL", "info")
            started: list[str] = []
            proc, api = start_agent(config, seen=started)
            try:
                conn = http.client.HTTPConnection(api.removeprefix("http://"), timeout=10)
                _until(conn, "/readyz", 200, within_s=20)
                deadline = time.monotonic() + 20
                while True:
                    body = json.loads(_get(conn, "/readyz")[1])
                    if body["publisher"]["points_written"] > 0 or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                conn.close()
            finally:
                out = "".join(started) + stop_agent(proc)
            doctor = _sauron("doctor", "--influx", "--config", str(config))
        assert body["publisher"]["points_written"] > 0, body
        assert body["publisher"]["url"].startswith("http://writer:***@127.0.0.1:"), body
        assert PASSWORD not in json.dumps(body)
        assert proc.returncode == 0 and "writer:***@" in out and PASSWORD not in out, out
        assert "writer:***@" in doctor.stdout and PASSWORD not in doctor.stdout + doctor.stderr
        assert "Traceback" not in doctor.stderr and doctor.returncode == 0, doctor
    finally:
        srv.stop()


def test_credentials_in_the_url_beside_a_token_are_refused_at_start(tmp_path: Path) -> None:
    """The client refuses every write with both: the agent must not start
    and lose every point; the error names the field and not the password."""
    token = tmp_path / "influx.token"
    token.write_text("t" * 32 + "\n")
    token.chmod(0o600)
    config = agent_config(
        tmp_path / "agent.yaml",
        "sauron-unused",
        influx={"url": f"http://writer:{PASSWORD}@127.0.0.1:8086", "token_file": str(token)},
    )
    for args in (("run", "--config", str(config)), ("doctor", "--influx", "--config", str(config))):
        done = _sauron(*args)
        said = done.stdout + done.stderr
        assert done.returncode != 0 and "Traceback" not in said, said
        assert "field influx" in said and "url holds credentials" in said, said
        assert PASSWORD not in said, said


class AnswersOnlyPing:
    """A server that answers /ping and never answers anything else: the
    doctor's write check meets it after its ping check passed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                self.held.append(conn)
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                data += chunk
                while b"\r\n\r\n" in data:
                    head, data = data.split(b"\r\n\r\n", 1)
                    if not head.startswith(b"GET /ping"):
                        return  # never a word, the connection held open
                    conn.sendall(
                        b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: v2.7.1\r\n"
                        b"Content-Length: 0\r\n\r\n"
                    )

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("server", ["silent", "answers_only_ping"])
def test_doctor_ends_against_a_server_that_never_answers(tmp_path: Path, server: str) -> None:
    """A listener that accepts and never says a word, and one that answers
    the ping and never a write: the doctor reports failed checks within
    their bound instead of hanging or crashing."""
    silent = socket.create_server(("127.0.0.1", 0))
    pinged = AnswersOnlyPing()
    port = silent.getsockname()[1] if server == "silent" else pinged.port
    try:
        config = tmp_path / "agent.yaml"
        agent_config(
            config,
            "sauron-unused",
            influx={"url": f"http://127.0.0.1:{port}", "timeout_s": 1, "spool_dir": str(tmp_path)},
        )
        done = _sauron("doctor", "--influx", "--json", "--config", str(config), within_s=30)
    finally:
        silent.close()
        pinged.close()
    assert done.returncode == 1 and "Traceback" not in done.stderr, done
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    if server == "silent":
        assert checks["influx_reachable"]["status"] == "fail", checks
    else:
        assert checks["influx_reachable"]["status"] == "pass", checks
        assert checks["influx_write"]["status"] == "fail", checks
        assert "no answer to a write within 1 s" in checks["influx_write"]["reason"]
    assert checks["influx_spool"]["status"] == "pass", checks


STREAM = b"GET /api/v1/stream%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _idle_stream(port: int, source: str, query: bytes = b"", rcvbuf: int = 0) -> socket.socket:
    """A stream client from `source` that asks and never reads."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(STREAM % query)
    return s


def _gets_an_event(port: int, within_s: float = 15) -> bytes:
    """What a dashboard opening the stream from 127.0.0.1 reads until its
    first snapshot (or the bound)."""
    with socket.create_connection(("127.0.0.1", port), timeout=within_s) as s:
        s.sendall(STREAM % b"")
        got, deadline = b"", time.monotonic() + within_s
        while b"event: snapshot" not in got and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_idle_stream_clients_never_shut_the_dashboard_out(tmp_path: Path) -> None:
    """100 stream clients that never read, from the dashboard's own address
    and then from 100 others: the dashboard still gets a slot at once, and
    a client whose buffers are full is ended by the write timeout."""
    idle: list[socket.socket] = []
    with veth_namespace(f"sauron-st-{os.getpid()}") as ns:
        proc, url = start_agent(agent_config(tmp_path / "agent.yaml", ns))
        port = _port(url)
        try:
            idle += [_idle_stream(port, "127.0.0.1") for _ in range(100)]
            assert b"event: snapshot" in _gets_an_event(port)
            idle += [_idle_stream(port, f"127.0.1.{n}") for n in range(1, 101)]
            assert b"event: snapshot" in _gets_an_event(port)
            # a reader whose window is closed: asks for the buckets (big
            # events) with a receive buffer of a few kilobytes
            idle.append(_idle_stream(port, "127.0.2.1", b"?buckets=true", rcvbuf=4096))
            # a connection per look: the agent closes one idle for 5 s
            conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
            deadline = time.monotonic() + 60
            while True:
                metrics = _get(conn, "/metrics")[1]
                conn.close()
                timed_out = _metric(metrics, 'sauron_stream_evicted_total{reason="write_timeout"}')
                if timed_out or time.monotonic() > deadline:
                    break
                time.sleep(1)
        finally:
            for s in idle:
                s.close()
            out = stop_agent(proc)
    assert proc.returncode == 0, out
    assert _metric(metrics, 'sauron_stream_evicted_total{reason="address_share"}') >= 92
    assert _metric(metrics, 'sauron_stream_evicted_total{reason="slots_full"}') >= 1
    assert timed_out >= 1
    assert _metric(metrics, "sauron_stream_clients") <= 100


def test_idle_connections_and_slow_headers_are_closed_within_seconds(tmp_path: Path) -> None:
    """Five clients that send one header line a second and never finish,
    and five that send nothing: each is closed by the agent within the
    bound (it waits IDLE_S, 5 s)."""
    with veth_namespace(f"sauron-sl-{os.getpid()}") as ns:
        proc, url = start_agent(agent_config(tmp_path / "agent.yaml", ns))
        try:
            slow = [socket.create_connection(("127.0.0.1", _port(url))) for _ in range(5)]
            silent = [socket.create_connection(("127.0.0.1", _port(url))) for _ in range(5)]
            for s in slow:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for s in (*slow, *silent):
                s.setblocking(False)
            open_ = set(range(10))
            start = time.monotonic()
            while open_ and time.monotonic() - start < 30:
                for i in list(open_):
                    s = (slow + silent)[i]
                    try:
                        if s.recv(4096) == b"":
                            open_.discard(i)
                            continue
                    except BlockingIOError:
                        pass
                    except ConnectionResetError:
                        open_.discard(i)
                        continue
                    if i < 5:
                        try:
                            s.sendall(b"X-Slow: one more line\r\n")
                        except OSError:
                            open_.discard(i)
                time.sleep(1)
            closed_after = time.monotonic() - start
            for s in (*slow, *silent):
                s.close()
        finally:
            out = stop_agent(proc)
    assert not open_, f"still open after {closed_after:.0f} s: {sorted(open_)}"
    assert proc.returncode == 0, out


@pytest.mark.parametrize("section", ["service", "influx"])
def test_a_token_file_must_be_the_agents_own(tmp_path: Path, section: str) -> None:
    """Open to group or others, owned by another user, or not UTF-8: the
    agent refuses to start, naming the file and what is wrong with it; a
    file of its own, 0600, is taken."""
    token = tmp_path / "token"
    cases: list[tuple[bytes, int, int, str]] = [
        (b"t" * 32 + b"\n", 0o644, 0, "(mode 0644)"),
        (b"t" * 32 + b"\n", 0o640, 0, "(mode 0640)"),
        (b"t" * 32 + b"\n", 0o600, 65534, "belongs to uid 65534"),
        (b"\xfft" * 32 + b"\n", 0o600, 0, "is not UTF-8 text (byte 0)"),
    ]
    with veth_namespace(f"sauron-tk-{os.getpid()}") as ns:
        more: dict[str, object] = {"service": {"port": 0, "token_file": str(token)}}
        if section == "influx":
            more = {
                "influx": {
                    "url": "http://127.0.0.1:9",
                    "token_file": str(token),
                    "spool_dir": str(tmp_path / "spool"),
                }
            }
        config = agent_config(tmp_path / "agent.yaml", ns, **more)
        for data, mode, owner, said in cases:
            token.write_bytes(data)
            token.chmod(mode)
            os.chown(token, owner, owner)
            done = _sauron("run", "--config", str(config))
            out = done.stdout + done.stderr
            assert done.returncode != 0 and "Traceback" not in out, out
            assert f"{token}: " in out and said in out, out
            assert "t" * 32 not in out
        token.write_bytes(b"t" * 32 + b"\n")
        token.chmod(0o600)
        os.chown(token, 0, 0)
        proc, _ = start_agent(config)
        assert proc.poll() is None
        out = stop_agent(proc)
        assert proc.returncode == 0, out


def test_per_ue_data_is_the_operators_only(tmp_path: Path) -> None:
    """An agent without a token: the aggregates and probes answer anyone
    on loopback, the per-session routes answer 403 over TCP and 200 over
    the UNIX socket, which is 0600 and refuses another user."""
    # in a folder anyone may enter (the agent makes it 0755): the socket's own
    # mode is what keeps other users out
    sock = Path(f"/run/sauron-test-{os.getpid()}/api.sock")
    with veth_namespace(f"sauron-ue-{os.getpid()}") as ns:
        config = agent_config(tmp_path / "agent.yaml", ns, service={"port": 0, "socket": str(sock)})
        proc, url = start_agent(config)
        try:
            conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
            for route in ("/healthz", "/api/v1/slices", "/api/v1/sla", "/metrics"):
                assert _get(conn, route)[0] == 200, route
            for route in ("/api/v1/sessions", "/api/v1/slices/embb/sessions"):
                status, body = _get(conn, route)
                assert status == 403 and "per-UE data" in body, (route, body)
                assert unix_get_json(sock, route) is not None
            conn.close()
            mode = stat.S_IMODE(sock.stat().st_mode)
            other = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import socket; socket.socket(socket.AF_UNIX).connect({str(sock)!r})",
                ],
                capture_output=True,
                text=True,
                user=65534,
                timeout=30,
            )
        finally:
            out = stop_agent(proc)
            with contextlib.suppress(OSError):
                sock.parent.rmdir()
    assert proc.returncode == 0, out
    assert mode == 0o600
    assert other.returncode != 0 and "PermissionError" in other.stderr, other
    assert not sock.exists(), "the socket is removed on stop"


def _interfaces(netns: str) -> list[dict[str, str]]:
    return [
        {"name": "n3", "role": "n3", "netns": netns},
        {"name": "n6", "role": "n6", "netns": netns},
    ]


@pytest.mark.parametrize(
    ("case", "said"),
    [
        (
            "netns_passwd",
            "field interfaces.0.netns: '/etc/passwd': /etc/passwd is not a namespace file",
        ),
        ("netns_mount", "is a namespace, not a network one"),
        ("netns_dotdot", "field interfaces.0.netns"),
        ("netns_path_dotdot", "no '.' or '..' parts"),
        ("config_not_utf8", "agent.yaml: not UTF-8 text: byte"),
        ("config_key_twice", "agent.yaml: not valid YAML: key 'interfaces' given twice"),
        ("catalog_huge", "catalog.yaml: larger than 8 MiB: not read"),
        ("catalog_not_utf8", "catalog.yaml: not UTF-8 text: byte"),
        ("socket_in_a_file", "field service.socket: cannot listen on"),
        ("socket_over_a_file", "it exists and is not a socket"),
    ],
)
def test_bad_inputs_are_refused_at_start_naming_the_file(
    tmp_path: Path, case: str, said: str
) -> None:
    """`sauron run` with each input that once gave a traceback, a hang or a
    silent surprise: it ends at once, non-zero, naming the file and field."""
    config = tmp_path / "agent.yaml"
    ns = f"sauron-in-{os.getpid()}"
    with veth_namespace(ns):
        body: dict[str, object] = {"interfaces": _interfaces(ns), "energy": {"enabled": False}}
        if case.startswith("netns_"):
            ref = {
                "netns_passwd": "/etc/passwd",
                "netns_mount": "/proc/self/ns/mnt",
                "netns_dotdot": "..",
                "netns_path_dotdot": f"/var/run/netns/../netns/{ns}",
            }[case]
            body["interfaces"] = _interfaces(ref)
        if case.startswith("catalog_"):
            catalog = tmp_path / "catalog.yaml"
            body["catalog"] = str(catalog)
            if case == "catalog_huge":
                line = b"# " + b"x" * 1000 + b"\n"
                catalog.write_bytes(line * (50 * 1024))  # 50 MB
            else:
                catalog.write_bytes(b"slices:\n  - name: caf\xe9\n    snssai: {sst: 1}\n")
        if case == "socket_in_a_file":
            (tmp_path / "a-file").write_text("")
            body["service"] = {"port": 0, "socket": str(tmp_path / "a-file" / "api.sock")}
        if case == "socket_over_a_file":
            (tmp_path / "precious.yaml").write_text("keep me")
            body["service"] = {"port": 0, "socket": str(tmp_path / "precious.yaml")}
        agent_config(config, ns, **{k: v for k, v in body.items() if k != "interfaces"})
        text = config.read_text()
        if case.startswith("netns_"):
            doc = yaml.safe_load(text)
            doc["interfaces"] = body["interfaces"]
            text = yaml.safe_dump(doc)
        if case == "config_not_utf8":
            config.write_bytes(text.encode() + b"# \xff\n")
        elif case == "config_key_twice":
            config.write_text(text + yaml.safe_dump({"interfaces": _interfaces(ns)}))
        else:
            config.write_text(text)
        done = _sauron("run", "--config", str(config), within_s=60)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in out, out
    assert said in out, out
    if case.startswith("socket_"):
        assert str(config) in out, out
    if case == "socket_over_a_file":
        # never removed, never replaced: the agent removes only what it made
        assert (tmp_path / "precious.yaml").read_text() == "keep me"


def test_the_socket_path_is_taken_only_from_a_dead_socket(tmp_path: Path) -> None:
    """A socket left by a killed agent (nobody listens) makes way; a socket
    another process listens on is refused and left alone."""
    stale = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(stale))
    dead.close()  # bound, never unlinked: what a SIGKILL leaves
    claim_socket_path(stale)
    assert not stale.exists()
    live = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(live))
        listening.listen()
        with pytest.raises(OSError, match="another process listens on it"):
            claim_socket_path(live)
        assert live.exists()
        inode = live.lstat().st_ino
        remove_own_socket(live, inode + 1)  # not the one the agent made
        assert live.exists()
