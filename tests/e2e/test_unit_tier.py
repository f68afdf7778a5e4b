"""tests/unit needs neither root nor the kernel: it passes run as an
unprivileged user (nobody), from a directory of its own, and the suite
refuses, naming one, to run a test that needs root as that user."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    # pytest's own temporary folders are root's alone: one nobody may enter
    with tempfile.TemporaryDirectory(prefix="sauron-unit-") as where:
        home = Path(where)
        home.chmod(0o755)
        os.chown(home, 65534, 65534)
        return _run_as_nobody(home, args)


def _run_as_nobody(home: Path, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    # a checkout that is root's: nothing is written into it
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if "PYTHONPATH" in os.environ:  # the package under test, where it is not installed
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [
            *("runuser", "-u", "nobody", "--", sys.executable, "-m", "pytest", "-q"),
            *("-p", "no:cacheprovider", "--basetemp", str(home / "pytest"), *args),
        ],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_unit_tier_passes_as_an_unprivileged_user() -> None:
    done = as_nobody(str(REPO / "tests" / "unit"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_a_test_that_needs_root_is_refused_by_name() -> None:
    done = as_nobody(str(REPO / "tests" / "kernel" / "test_engine.py"))
    assert done.returncode != 0
    assert (
        "need root" in done.stderr + done.stdout and "test_engine.py" in done.stderr + done.stdout
    )
