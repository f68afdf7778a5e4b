"""Per-slice impairments of the reference UPF: delay (fixed plus uniform
jitter), random loss, and a rate limit (token-bucket policer)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from sauron.testbed.sessions import Impairment


@dataclass
class TokenBucket:
    rate_bps: float
    burst_bits: float
    tokens: float = field(init=False)
    last: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst_bits

    def admit(self, nbytes: int) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst_bits, self.tokens + (now - self.last) * self.rate_bps)
        self.last = now
        if self.tokens >= nbytes * 8:
            self.tokens -= nbytes * 8
            return True
        return False


class SliceImpairment:
    """What happens to one packet of a slice in one direction."""

    def __init__(self, spec: Impairment, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.bucket = (
            TokenBucket(spec.rate_mbps * 1e6, spec.rate_mbps * 1e6 * 0.05)
            if spec.rate_mbps
            else None
        )

    def verdict(self, nbytes: int) -> str:
        """ "pass", "lost" or "rate_dropped"."""
        if self.spec.loss and self.rng.random() < self.spec.loss:
            return "lost"
        if self.bucket is not None and not self.bucket.admit(nbytes):
            return "rate_dropped"
        return "pass"

    def delay_s(self) -> float:
        jitter = self.rng.uniform(0, self.spec.jitter_ms) if self.spec.jitter_ms else 0.0
        return (self.spec.delay_ms + jitter) / 1000.0
