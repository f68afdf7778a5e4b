"""What one write request's answer means for its batch, whatever the
protocol: written, worth retrying (no connection, timeout, 5xx, 429),
refused for who we are (401, 403, 404: credentials, tenant, org or bucket),
or refused for what it holds (other 4xx: retrying the same bytes cannot
help). A writer turns a batch of lines into one request and its answer
into a WriteResult; the delivery (sauron.export.delivery.lossless) decides
what happens to the batch."""

from __future__ import annotations

import dataclasses
import email.utils
import enum
import time
from dataclasses import dataclass
from typing import Protocol


class Outcome(enum.Enum):
    WRITTEN = "written"
    RETRY = "retry"
    REJECTED = "rejected"
    INVALID = "invalid"


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    status: int | None = None
    #: the server's message or the connection error, for the log (never a secret)
    message: str = ""
    #: seconds the server asked us to wait (Retry-After)
    retry_after: float | None = None


REJECTED_STATUS = (401, 403, 404)


class Writer(Protocol):
    async def write(self, lines: list[str]) -> WriteResult: ...
    async def close(self) -> None: ...


def by_status(status: int, message: str, retry_after: str | None) -> WriteResult:
    """The outcome of an HTTP answer that was not a success."""
    if status == 429 or status >= 500:
        return WriteResult(Outcome.RETRY, status, message, retry_after_seconds(retry_after))
    if status in REJECTED_STATUS:
        return WriteResult(Outcome.REJECTED, status, message)
    return WriteResult(Outcome.INVALID, status, message)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def redacted(result: WriteResult, secrets: list[str]) -> WriteResult:
    """The result with every secret in its message replaced: a client may
    quote the URL or a header back."""
    message = result.message
    for secret in secrets:
        message = message.replace(secret, "***")
    return dataclasses.replace(result, message=message)
