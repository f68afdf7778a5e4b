"""The wheel carries its data: built from the project's files, installed
(not editable) into a fresh virtual environment of Debian's Python with only
Debian's bcc made visible, as the Dockerfile does, and run from a directory
that holds no checkout, it checks the catalog it carries and replays a
capture through programs compiled from the C it carries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bcc  # Debian's python3-bpfcc, the one the project's venv sees
import pytest

pytestmark = [pytest.mark.kernel]  # replay compiles and runs the programs

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "tests" / "data" / "arkime_gtpu_seqnum.pcap"
#: the dashboard's libraries, installed by the setup, ignored by git
VENDOR = Path("sauron") / "service" / "dashboard" / "static" / "vendor"


def project_files(into: Path) -> None:
    """The files a release is built from: what git tracks, and the
    dashboard's libraries the setup installed."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for raw in tracked:
        name = raw.decode()
        if not name or not (REPO / name).exists():
            continue
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_symlink():
            target.symlink_to((REPO / name).readlink())
        elif (REPO / name).is_file():
            shutil.copy2(REPO / name, target)
    shutil.copytree(REPO / VENDOR, into / VENDOR, dirs_exist_ok=True)


def test_an_installed_wheel_checks_its_catalog_and_replays_a_capture(tmp_path: Path) -> None:
    source, dist, venv, elsewhere = (tmp_path / n for n in ("src", "dist", "venv", "run"))
    project_files(source)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True,
    )
    (wheel,) = dist.glob("sauron-*.whl")
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    debian_bcc = venv / "debian-bcc"
    debian_bcc.mkdir()
    (debian_bcc / "bcc").symlink_to(Path(bcc.__file__).parent)
    (Path(purelib) / "debian-bcc.pth").write_text(f"{debian_bcc}\n")
    # as the image installs it: the locked dependencies, checked by hash, then the wheel
    lock = REPO / "requirements.lock"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--require-hashes", "-r", str(lock)],
        check=True,
    )
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)

    elsewhere.mkdir()
    sauron = venv / "bin" / "sauron"
    # nothing points back at this checkout
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SAURON_C_DIR")}
    checked = subprocess.run(
        [str(sauron), "catalog", "check"], cwd=elsewhere, capture_output=True, text=True, env=clean
    )
    assert checked.returncode == 0, checked.stderr
    assert "embb" in checked.stdout and "urllc" in checked.stdout
    replayed = subprocess.run(
        [str(sauron), "replay", str(CAPTURE), "--json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean,
    )
    assert replayed.returncode == 0, replayed.stderr
    report = json.loads(replayed.stdout)
    assert report["frames"] > 0 and report["gtpu_frames"] > 0
    # what ran is the installed copy, not this checkout
    where = subprocess.run(
        [str(python), "-c", "import sauron.abi.source as s; print(s.c_dir())"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
        env=clean,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where
