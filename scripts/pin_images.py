"""Pins every base image of a Dockerfile by digest: `FROM debian:12-slim`
becomes `FROM debian:12-slim@sha256:...`, the digest the registry serves
for that tag today (its multi-platform index, so every architecture keeps
its own image). The tag stays for the reader; the digest is what builds.
Run again to move the pins to the tags' current images (`make pin-images`).

Speaks the registry's HTTP API (distribution spec): a HEAD of the tag's
manifest, and on 401 the anonymous bearer token its WWW-Authenticate
header offers."""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DOCKER_HUB = "https://registry-1.docker.io"
#: an index first: a digest of one platform's manifest would pin one architecture
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
FROM = re.compile(
    r"^(?P<head>FROM\s+(?:--platform=\S+\s+)?)(?P<image>[^\s@:]+(?::\d+(?=/))?(?:/[^\s@:]+)*)"
    r"(?::(?P<tag>[^\s@]+))?(?:@sha256:[0-9a-f]{64})?(?P<tail>\s.*)?$",
    re.IGNORECASE,
)
CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class PinError(Exception):
    """A tag the registry would not resolve, said in words."""


def repository(image: str, default_registry: str) -> tuple[str, str]:
    """(registry base URL, repository path) of an image name: Docker Hub's
    official images live under library/."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return f"https://{first}", rest
    return default_registry, image if rest else f"library/{image}"


def _head(url: str, token: str | None) -> urllib.request.Request:
    headers = {"Accept": ACCEPT}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.Request(url, method="HEAD", headers=headers)


def _token(challenge: str) -> str:
    """The anonymous pull token a registry's Bearer challenge points to."""
    scheme, _, params = challenge.partition(" ")
    if scheme.lower() != "bearer":
        raise PinError(f"the registry asks for {scheme} authentication, not a bearer token")
    fields = dict(CHALLENGE.findall(params))
    realm = fields.pop("realm", None)
    if realm is None:
        raise PinError(f"the registry's challenge names no token realm: {challenge}")
    with urllib.request.urlopen(f"{realm}?{urllib.parse.urlencode(fields)}", timeout=30) as r:
        body = json.load(r)
    token = body.get("token") or body.get("access_token")
    if not token:
        raise PinError(f"{realm} gave no token")
    return str(token)


def digest(image: str, tag: str, default_registry: str = DOCKER_HUB) -> str:
    """The sha256 digest the registry serves for image:tag."""
    base, path = repository(image, default_registry)
    url = f"{base}/v2/{path}/manifests/{tag}"
    token = None
    for _ in range(2):
        try:
            with urllib.request.urlopen(_head(url, token), timeout=30) as r:
                found = r.headers.get("Docker-Content-Digest")
        except urllib.error.HTTPError as e:
            if e.code == 401 and token is None:
                token = _token(e.headers.get("WWW-Authenticate", ""))
                continue
            raise PinError(f"{image}:{tag}: the registry answered {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            raise PinError(f"{image}:{tag}: no answer from {base} ({e.reason})") from e
        if not found or not re.fullmatch(r"sha256:[0-9a-f]{64}", found):
            raise PinError(f"{image}:{tag}: the registry gave no sha256 digest")
        return found
    raise PinError(f"{image}:{tag}: the registry refused its own token")


def pin(text: str, default_registry: str = DOCKER_HUB) -> str:
    """The Dockerfile with every FROM of a registry image pinned; a FROM
    of an earlier stage (FROM web) is left as it is."""
    stages: set[str] = set()
    lines = []
    for line in text.splitlines(keepends=True):
        match = FROM.match(line.rstrip("\n"))
        if match is None or match["image"].lower() in stages:
            lines.append(line)
        else:
            tag = match["tag"] or "latest"
            found = digest(match["image"], tag, default_registry)
            tail = match["tail"] or ""
            lines.append(f"{match['head']}{match['image']}:{tag}@{found}{tail}\n")
        alias = re.search(r"\sAS\s+(\S+)\s*$", line, re.IGNORECASE)
        if line.upper().startswith("FROM") and alias:
            stages.add(alias.group(1).lower())
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dockerfile", type=Path, nargs="?", default=Path("Dockerfile"))
    parser.add_argument("--registry", default=DOCKER_HUB, help="for images without a host")
    args = parser.parse_args(argv)
    try:
        pinned = pin(args.dockerfile.read_text(), args.registry)
    except PinError as e:
        print(f"pin-images: {args.dockerfile}: {e}", file=sys.stderr)
        return 1
    args.dockerfile.write_text(pinned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
