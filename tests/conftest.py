"""Shared fixtures. Tests marked `kernel` load BPF programs into the running
kernel and `netns` ones build namespaces: both need root, and CI runs them
all (there is no skip for a missing capability: a missing one is a failure)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauron.bpf import pinned
from sauron.bpf.links import Links
from sauron.bpf.links import leftovers as program_leftovers
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.bpf.rules import program_catalog
from sauron.bpf.security import set_checks
from sauron.catalog import Catalog, load_catalog
from sauron.host.netns import Topology, leftover_namespaces

REPO = Path(__file__).resolve().parents[1]
SHARED_CAPTURES = REPO.parent / "shared" / "captures"
DATA = Path(__file__).resolve().parent / "data"


UNIT = Path(__file__).resolve().parent / "unit"
#: pinned links of a test go in a folder of this prefix under bpffs (pin_dir)
PIN_ROOT = Path("/sys/fs/bpf")
PIN_PREFIX = "sauron-test-"
AGENT_PINS = pinned.PIN_ROOT


def pytest_collection_finish(session: pytest.Session) -> None:
    """tests/unit runs as any user; everything else loads BPF programs or
    builds namespaces, and needs root."""
    if os.geteuid() == 0:
        return
    privileged = [i.nodeid for i in session.items if UNIT not in Path(str(i.path)).parents]
    if privileged:
        raise pytest.UsageError(
            f"{len(privileged)} of the collected tests need root (they load BPF programs or "
            f"build namespaces; tests/unit needs neither), the first: {privileged[0]}"
        )


def leftovers() -> list[str]:
    """What a test run must not leave on the machine: namespaces of ours, TUN
    devices, node processes, XDP or TC programs on the host's links."""
    found = [f"namespace {n}" for n in leftover_namespaces()]
    links = subprocess.run(
        ["ip", "-d", "-o", "link", "show"], capture_output=True, text=True
    ).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip()
        if " tun " in line or "prog/xdp" in line or "xdpgeneric" in line:
            found.append(f"link {name}: {line[:120]}")
        filters = "".join(
            subprocess.run(
                ["tc", "filter", "show", "dev", name.split("@")[0], side],
                capture_output=True,
                text=True,
            ).stdout
            for side in ("ingress", "egress")
        )
        if "sauron" in filters:
            found.append(f"TC filter on {name}")
        with contextlib.suppress(LookupError):  # gone since the listing
            left = program_leftovers(None, name.split("@")[0])
            found += [f"{item.hook} program {item.prog_name} on {name}" for item in left]
    if PIN_ROOT.is_dir():
        found += [f"pin folder {p}" for p in PIN_ROOT.glob(f"{PIN_PREFIX}*")]
    # agents' data paths (sauron run, the build tests): SIGTERM or detach removes them
    if AGENT_PINS.is_dir():
        found += [f"agent data path {p}" for p in AGENT_PINS.iterdir()]
    procs = subprocess.run(
        ["pgrep", "-a", "-f", "sauron.testbed|osmo-ggsn|sgsnemu"], capture_output=True, text=True
    ).stdout
    found += [f"process {p}" for p in procs.splitlines() if "pgrep" not in p]
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.geteuid() != 0:
        return  # an unprivileged run makes no namespaces, links or nodes
    left = leftovers()
    if left:
        session.config.stash[LEFTOVERS] = left
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    left = terminalreporter.config.stash.get(LEFTOVERS, [])
    if left:
        terminalreporter.section("left behind by the test run (a failure)", red=True)
        for item in left:
            terminalreporter.write_line(item)


LEFTOVERS = pytest.StashKey[list[str]]()


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
def dataplane(recording_dataplane: DataPlane, catalog: Catalog) -> Iterator[DataPlane]:
    """The session's data plane with zeroed counters and the default catalog,
    the security checks and measurements off; left with them off again for
    the tests that take the session's data plane as it is."""
    recording_dataplane.reset_counters()
    program_catalog(recording_dataplane, catalog)
    set_checks(recording_dataplane, False)
    apply_settings(recording_dataplane, MeasureSettings.off())
    yield recording_dataplane
    set_checks(recording_dataplane, False)
    apply_settings(recording_dataplane, MeasureSettings.off())


@pytest.fixture()
def topology() -> Iterator[Topology]:
    """Namespaces for one test, removed after it whatever happened."""
    topo = Topology()
    try:
        yield topo
    finally:
        topo.teardown()
        assert not [n for n in leftover_namespaces(topo.prefix)], "namespaces left behind"


@pytest.fixture()
def links(topology: Topology) -> Iterator[Links]:
    """Links made in the test's namespaces, detached before the namespaces go."""
    with Links() as held:
        yield held


@pytest.fixture()
def pin_dir() -> Iterator[Path]:
    """A fresh folder under bpffs for a test's pinned links; whatever a test
    leaves pinned there is removed after it (and reported as left behind)."""
    folder = Path(tempfile.mkdtemp(prefix=PIN_PREFIX, dir=PIN_ROOT))
    try:
        yield folder
    finally:
        left = sorted(folder.iterdir())
        for path in left:
            path.unlink()
        folder.rmdir()
        assert not left, f"pins left behind: {left}"


#: the public captures every replay test holds Sauron to (tests/data, else the shared folder)
CAPTURES = [
    "arkime_gtpu_seqnum.pcap",
    "arkime_vlan_ipv6_outer.pcap",
    "ndpi_qinq_gtpu_mixed.pcapng",
    "ndpi_seqnum_truncated.pcapng",
    "oai_multiple_ue_n3_n4.pcap",
    "oai_vpp_bench_n3_qfi5.pcap",
    "open5gs_n3_gtpu_qfi1.pcap",
    "open5gs_n4_pfcp_snssai.pcap",
    "pfcp_fuzz_2000.pcap",
    "sa5g_reg_pdu_est_n2_n3_n4.pcap",
    "zeek_gtp10_echo_errind.pcap",
    "zeek_gtp1_outer_ip_fragments.pcap",
    "zeek_gtp3_false_gtp_dns.pcap",
    "zeek_gtp9_malformed.pcap",
]


def capture_path(name: str) -> Path:
    local = DATA / name
    if local.exists():
        return local
    shared = SHARED_CAPTURES / name
    assert shared.exists(), f"{name}: neither in tests/data nor in {SHARED_CAPTURES}"
    return shared
