"""deploy/prometheus/sauron-rules.yaml: Prometheus's own tool accepts the
rules and runs them against series shaped like an agent's /metrics (the
SLA alert fires while a violation is open and resolves when it closes;
spooling alerts after five minutes; the delivered throughput counts only
the bytes that leave the UPF). No root (promtool is Debian's, installed by
`make setup`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True)


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", "sauron-rules.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_the_rules_do_what_they_say_on_series_like_an_agents() -> None:
    done = promtool("test", "rules", "sauron-rules.test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_rule_is_caught(tmp_path: Path) -> None:
    """The test file would notice a rule that watched the wrong state."""
    (tmp_path / "sauron-rules.yaml").write_text(
        (RULES / "sauron-rules.yaml").read_text().replace('state="violated"', 'state="at risk"')
    )
    (tmp_path / "sauron-rules.test.yaml").write_text((RULES / "sauron-rules.test.yaml").read_text())
    done = subprocess.run(
        ["promtool", "test", "rules", "sauron-rules.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "SauronSliceSlaViolated" in done.stdout + done.stderr
