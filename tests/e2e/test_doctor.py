"""`sauron doctor` reports the host as the tests themselves find it."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sauron.commands import doctor
from sauron.host.checks import FAIL, PASS, Check

pytestmark = [pytest.mark.kernel, pytest.mark.netns]


@pytest.fixture(scope="module")
def doctor_json() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "sauron", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def _status(report: dict, name: str) -> str:
    return next(c["status"] for c in report["checks"] if c["name"] == name)


def test_required_features_pass(doctor_json: dict) -> None:
    # the suite attaches XDP (generic) and TC and compiles with bcc: those must pass
    for name in (
        "bpf_syscall",
        "bcc_compile",
        "xdp_generic",
        "tcx",
        "bpf_pin",  # the agent pins its data path
        "bpffs",
        "capabilities",
        "kernel",
        "dashboard",  # setup-host installs its front-end files
    ):
        assert _status(doctor_json, name) == "pass", name
    assert doctor_json["ok"] is True
    assert doctor_json["missing"] == []


def test_tracepoints_and_bpf_stats_match_the_kernel(doctor_json: dict) -> None:
    exists = Path("/sys/kernel/tracing/events/sched/sched_switch").exists()
    assert _status(doctor_json, "tracepoints") == ("pass" if exists else "fail")
    assert _status(doctor_json, "bpf_stats") == "pass"


def test_cycle_counters_match_an_independent_probe(doctor_json: dict) -> None:
    fd = doctor.perf_event_open(0, 0)
    if fd >= 0:
        os.close(fd)
    assert _status(doctor_json, "cycle_counters") == ("pass" if fd >= 0 else "fail")
    if fd < 0:
        assert -fd in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV, errno.EACCES)


def test_rapl_matches_sysfs(doctor_json: dict) -> None:
    present = bool(doctor.rapl_sources())
    assert _status(doctor_json, "rapl") == ("pass" if present else "fail")


def test_rapl_detection_on_fake_sysfs(tmp_path: Path) -> None:
    powercap = tmp_path / "powercap"
    zone = powercap / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "energy_uj").write_text("0\n")
    assert doctor.rapl_sources(powercap, tmp_path / "none") == []  # zero energy does not count
    (zone / "energy_uj").write_text("123456789\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    assert doctor.rapl_sources(powercap, tmp_path / "none") == [str(zone / "energy_uj")]


def test_missing_requirement_fails_the_exit_code() -> None:
    checks = [
        Check("bpffs", FAIL, True, "not mounted", "mount it"),
        Check("rapl", FAIL, False, "absent"),
    ]
    result = doctor.report(checks)
    assert result["ok"] is False and result["missing"] == ["bpffs"]
    text = doctor.format_checks(checks)
    assert "mount it" in text and "missing what the agent needs: bpffs" in text


def test_a_check_that_hangs_or_raises_is_a_failed_check_not_a_stuck_doctor() -> None:
    """Every check runs under `bounded`: one that never answers fails
    within its bound, one that raises fails naming the error."""
    never = threading.Event()

    def hangs() -> Check:
        never.wait()
        raise AssertionError("unreachable")

    def raises() -> Check:
        raise OSError(errno.EIO, "Input/output error")

    def passes() -> Check:
        return Check("fine", PASS, True, "ok")

    stuck = doctor.bounded("mount_x", hangs, lambda c: c, timeout_s=0.5)
    assert (stuck.name, stuck.status, stuck.reason) == (
        "mount_x",
        FAIL,
        "no answer within 0.5 s",
    )
    broken = doctor.bounded("rapl", raises, lambda c: c, timeout_s=10)
    assert broken.status == FAIL and "OSError" in broken.reason and "Input/output" in broken.reason
    assert doctor.bounded("fine", passes, lambda c: c).status == PASS
    never.set()
