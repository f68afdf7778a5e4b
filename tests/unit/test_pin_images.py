"""`make pin-images` pins the Dockerfile's base images by digest. No
registry is reachable from the machines this suite runs on, so the
registry here is a stand-in on loopback that speaks the parts of the
distribution API the script uses: a 401 with a Bearer challenge, the
anonymous token, and the tag's manifest digest in a HEAD's headers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from script_modules import load_script

REPO = Path(__file__).resolve().parents[2]
pin_images = load_script(REPO / "scripts" / "pin_images.py")

DIGESTS = {
    "library/debian:12-slim": "sha256:" + "d" * 64,
    "library/node:22-bookworm-slim": "sha256:" + "e" * 64,
}
INDEX = "application/vnd.oci.image.index.v1+json"


class Registry(BaseHTTPRequestHandler):
    base = ""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # the token endpoint
        assert self.path.startswith("/token?") and "scope=repository" in self.path
        body = b'{"token": "anonymous"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        _, _, rest = self.path.partition("/v2/")
        repo, _, tag = rest.partition("/manifests/")
        if self.headers.get("Authorization") != "Bearer anonymous":
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate",
                f'Bearer realm="{self.base}/token",service="registry.test",'
                f'scope="repository:{repo}:pull"',
            )
            self.end_headers()
            return
        found = DIGESTS.get(f"{repo}:{tag}")
        if found is None or INDEX not in self.headers.get("Accept", ""):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Docker-Content-Digest", found)
        self.end_headers()


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    Registry.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Registry.base
    server.shutdown()


def test_every_registry_image_is_pinned_and_stages_are_left_alone(
    registry: str, tmp_path: Path
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# a comment: FROM nothing\n"
        "FROM node:22-bookworm-slim AS web\n"
        "RUN true\n"
        f"FROM --platform=linux/amd64 debian:12-slim@sha256:{'0' * 64}\n"
        "COPY --from=web /a /b\n"
        "FROM web AS again\n"
    )
    assert pin_images.main([str(dockerfile), "--registry", registry]) == 0
    assert dockerfile.read_text() == (
        "# a comment: FROM nothing\n"
        f"FROM node:22-bookworm-slim@{DIGESTS['library/node:22-bookworm-slim']} AS web\n"
        "RUN true\n"
        f"FROM --platform=linux/amd64 debian:12-slim@{DIGESTS['library/debian:12-slim']}\n"
        "COPY --from=web /a /b\n"
        "FROM web AS again\n"
    )


def test_the_projects_dockerfile_names_only_images_it_can_pin(registry: str) -> None:
    """Every FROM of the real Dockerfile parses, and the stand-in (which
    knows its two tags) pins them all."""
    text = (REPO / "Dockerfile").read_text()
    pinned = pin_images.pin(text, registry)
    froms = [line for line in pinned.splitlines() if line.startswith("FROM")]
    assert froms and all("@sha256:" in line for line in froms), froms


def test_an_unknown_tag_or_a_silent_registry_is_said_in_words(
    registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:13-nonexistent\n")
    assert pin_images.main([str(dockerfile), "--registry", registry]) == 1
    assert "debian:13-nonexistent: the registry answered 404" in capsys.readouterr().err
    assert dockerfile.read_text() == "FROM debian:13-nonexistent\n"  # untouched

    with pytest.raises(pin_images.PinError, match=r"debian:12-slim: no answer from"):
        pin_images.digest("debian", "12-slim", "http://127.0.0.1:9")
