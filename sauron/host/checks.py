"""One check of what the agent needs, as the doctor and every readiness
probe report it: what was checked, whether it passed, whether the agent
needs it, why, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass

PASS = "pass"
FAIL = "fail"


@dataclass
class Check:
    name: str
    status: str  # pass / fail
    required: bool
    reason: str
    remedy: str = ""
