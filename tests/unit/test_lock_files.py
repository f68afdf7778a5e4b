"""The lock files install what pyproject.toml asks for: every dependency
(the agent's in requirements.lock, with the dev tools in
requirements-dev.lock) pinned to one version its specifier allows, and
every pin carrying hashes (pip --require-hashes refuses anything else).
`make lock` rewrites them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every pin; each must be followed by hashes."""
    found: dict[str, str] = {}
    lines = lock.read_text().splitlines()
    for i, line in enumerate(lines):
        match = PIN.match(line)
        if match is None:
            continue
        assert i + 1 < len(lines) and "--hash=sha256:" in lines[i + 1], f"{line}: no hash"
        name = canonicalize_name(match.group(1).split("[")[0])
        found[name] = match.group(2)
    return found


def wanted(extra: bool) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    if extra:
        texts += project["optional-dependencies"]["dev"]
    return [Requirement(t) for t in texts]


def test_each_lock_pins_every_dependency_within_its_specifier() -> None:
    for lock, extra in (("requirements.lock", False), ("requirements-dev.lock", True)):
        pinned = pins(REPO / lock)
        for requirement in wanted(extra):
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{lock}: {requirement.name} not locked (make lock)"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"{lock}: {requirement.name}=={pinned[name]} outside {requirement.specifier}"
            )
    # the agent's lock holds no dev tool
    agent = pins(REPO / "requirements.lock")
    assert "pytest" not in agent and "mypy" not in agent
