"""Shared fixtures. Tests marked `kernel` load BPF programs into the running
kernel and `netns` ones build namespaces: both need root, and CI runs them
all (there is no skip for a missing capability: a missing one is a failure)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauron.bpf.loader import DataPlane
from sauron.catalog import Catalog, load_catalog
from sauron.netns import Topology, leftover_namespaces
from sauron.rules import program_catalog

REPO = Path(__file__).resolve().parents[1]
SHARED_CAPTURES = REPO.parent / "shared" / "captures"
DATA = Path(__file__).resolve().parent / "data"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError(
            "the test suite needs root: it loads BPF programs and builds namespaces"
        )


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def recording_dataplane() -> Iterator[DataPlane]:
    """The data-plane object built once per session, in the variant that
    records each frame's parse result."""
    dp = DataPlane(record_last=True)
    yield dp
    dp.close()


@pytest.fixture()
def dataplane(recording_dataplane: DataPlane, catalog: Catalog) -> DataPlane:
    """The session's data plane with zeroed counters and the default catalog."""
    recording_dataplane.reset_counters()
    program_catalog(recording_dataplane, catalog)
    return recording_dataplane


@pytest.fixture()
def topology() -> Iterator[Topology]:
    """Namespaces for one test, removed after it whatever happened."""
    topo = Topology()
    try:
        yield topo
    finally:
        topo.teardown()
        assert not [n for n in leftover_namespaces(topo.prefix)], "namespaces left behind"
