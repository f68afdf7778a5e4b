"""Raw HTTP request bytes against a real agent process: methods, targets,
versions, headers and bodies that no client library would send (NUL and
non-UTF-8 bytes, percent escapes, long paths, bad tokens, lying lengths).
Every answer must be below 500, and the agent's log must hold no
traceback: malformed input is the client's problem, told as such."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_process import REPO, agent_config, veth_namespace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.kernel, pytest.mark.netns]

TOKEN = "fuzz-token-0123456789abcdef"
PATHS = [
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/static/app.js",
    "/static/",
    "/api/v1/slices",
    "/api/v1/slices/embb",
    "/api/v1/slices/embb/kpis",
    "/api/v1/slices/embb/histograms/transit",
    "/api/v1/slices/embb/sessions",
    "/api/v1/sessions",
    "/api/v1/histograms/geometry",
    "/api/v1/sla",
    "/api/v1/energy",
    "/api/v1/openapi.json",
]
STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})")


class Agent:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, port: int) -> None:
        self.proc, self.log, self.port = proc, log, port


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """One agent for every example, with a token and no rate limit (the
    examples come fast; the limiter has its own test), its log in a file."""
    tmp = tmp_path_factory.mktemp("fuzz")
    token = tmp / "api.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    with veth_namespace(f"sauron-fz-{os.getpid()}") as ns:
        config = agent_config(
            tmp / "agent.yaml",
            ns,
            service={"port": 0, "token_file": str(token), "rate_per_s": 0},
        )
        log = tmp / "agent.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sauron", "run", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        try:
            deadline = time.monotonic() + 60
            while not (found := re.search(rb"serving http://[\d.]+:(\d+)", log.read_bytes())):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            yield Agent(proc, log, int(found.group(1)))
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def exchange(port: int, request: bytes, within_s: float = 3.0) -> bytes:
    """Sends the bytes and reads until the answer's status line is in (or
    the server closes, or `within_s` pass): the answer's first bytes. The
    sending side stays open, as a client waiting for its answer keeps it."""
    with socket.create_connection(("127.0.0.1", port), timeout=within_s) as s:
        with contextlib.suppress(OSError):  # the server may close on a request it will not read
            s.sendall(request)
        got = b""
        try:
            while b"\r\n" not in got and (chunk := s.recv(65536)):
                got += chunk
            s.settimeout(0.2)
            while len(got) < 4096 and (chunk := s.recv(65536)):
                got += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return got


nasty = st.sampled_from(
    [b"\x00", b"%00", b"%", b"%zz", b"\xff", b"\xc3\xa9", b"..", b"/", b"%2e%2e%2f", b"?", b"#"]
)
target = st.one_of(
    st.builds(
        lambda p, extra: p.encode() + b"".join(extra),
        st.sampled_from(PATHS),
        st.lists(st.one_of(nasty, st.binary(max_size=8)), max_size=6),
    ),
    st.builds(lambda n: b"/static/" + b"a" * n, st.integers(0, 5000)),
    st.builds(lambda n: b"/api/v1/slices/" + b"x" * n, st.integers(0, 5000)),
    st.binary(max_size=64),
)
#: mostly what a server expects, so the requests reach the routes
method = st.one_of(
    st.just(b"GET"),
    st.just(b"GET"),
    st.just(b"GET"),
    st.sampled_from([b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PRI"]),
    st.binary(min_size=0, max_size=8),
)
version = st.one_of(
    st.just(b"HTTP/1.1"),
    st.just(b"HTTP/1.1"),
    st.just(b"HTTP/1.1"),
    st.sampled_from([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9", b"", b"http/1.1"]),
)
auth_value = st.one_of(
    st.builds(lambda v: b"Bearer " + v, st.binary(max_size=40)),
    st.just(f"Bearer {TOKEN}".encode()),
    st.builds(lambda v: f"Bearer {TOKEN}".encode() + v, st.binary(min_size=1, max_size=4)),
    st.binary(max_size=40),
)
header = st.one_of(
    st.tuples(st.just(b"Authorization"), auth_value),
    st.tuples(st.just(b"Content-Length"), st.sampled_from([b"0", b"5", b"-1", b"99999999", b"x"])),
    st.tuples(st.just(b"Transfer-Encoding"), st.sampled_from([b"chunked", b"gzip", b"\x00"])),
    st.tuples(st.just(b"Accept-Encoding"), st.binary(max_size=20)),
    st.tuples(st.just(b"Range"), st.sampled_from([b"bytes=0-1", b"bytes=-", b"bytes=9-1"])),
    st.tuples(st.just(b"If-Modified-Since"), st.binary(max_size=30)),
    st.tuples(st.binary(min_size=1, max_size=12), st.binary(max_size=40)),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:  # now and then, anything at all
        return draw(st.binary(max_size=300)) + b"\r\n\r\n"
    line = draw(method) + b" " + draw(target) + b" " + draw(version)
    headers = [b"Host: 127.0.0.1"] + [n + b": " + v for n, v in draw(st.lists(header, max_size=6))]
    return b"\r\n".join([line, *headers]) + b"\r\n\r\n" + draw(st.binary(max_size=64))


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_no_request_bytes_get_a_server_error(agent: Agent, request: bytes) -> None:
    answer = exchange(agent.port, request)
    status = STATUS_LINE.match(answer)
    assert status is None or int(status.group(1)) < 500, (request, answer[:300])
    assert agent.proc.poll() is None, "the agent died"


def test_the_fuzzed_agent_logged_no_traceback(agent: Agent) -> None:
    """After the examples above (same module, same agent)."""
    for known in (b"/static/%00", b"/static/" + b"a" * 300, b"/api/v1/slices"):
        answer = exchange(agent.port, b"GET " + known + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert STATUS_LINE.match(answer) and int(answer[9:12]) < 500, answer[:200]
    bearer = b"GET /api/v1/slices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xc3\xa9\xff\r\n\r\n"
    assert exchange(agent.port, bearer).startswith(b"HTTP/1.1 401")
    log = agent.log.read_text(errors="replace")
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]
