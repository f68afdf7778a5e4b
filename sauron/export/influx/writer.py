"""One write request to the server through influxdb-client's async API, and
what its answer means for the batch: written, worth retrying (no
connection, timeout, 5xx, 429), refused for who we are (401, 403, 404: a
bad token, an unknown org or bucket), or refused for what it holds (other
4xx: retrying the same bytes cannot help)."""

from __future__ import annotations

import dataclasses
import email.utils
import enum
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from sauron.export.influx.settings import InfluxConfig
from sauron.host.redaction import url_password


class Outcome(enum.Enum):
    WRITTEN = "written"
    RETRY = "retry"
    REJECTED = "rejected"
    INVALID = "invalid"


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    status: int | None = None
    #: the server's message or the connection error, for the log (never the token)
    message: str = ""
    #: seconds the server asked us to wait (Retry-After)
    retry_after: float | None = None


REJECTED_STATUS = (401, 403, 404)


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


def _client_errors() -> tuple[type[BaseException], ...]:
    """What a write may raise that classify() reads. The client library is
    imported here, when a writer is made, not with the agent: it takes a
    fifth of a second, which an agent that publishes nowhere, and every
    restart's first answer, need not wait for."""
    from influxdb_client.rest import ApiException

    return (ApiException, aiohttp.ClientError, TimeoutError, OSError)


def classify(exc: BaseException) -> WriteResult:
    from influxdb_client.rest import ApiException

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message = str(getattr(exc, "message", "") or exc.reason or "")
        headers: Any = exc.headers or {}
        if status == 429 or status >= 500:
            return WriteResult(
                Outcome.RETRY, status, message, retry_after_seconds(headers.get("Retry-After"))
            )
        if status in REJECTED_STATUS:
            return WriteResult(Outcome.REJECTED, status, message)
        return WriteResult(Outcome.INVALID, status, message)
    if isinstance(exc, TimeoutError):
        return WriteResult(Outcome.RETRY, None, "timed out")
    return WriteResult(Outcome.RETRY, None, str(exc) or type(exc).__name__)


class InfluxWriter:
    """Made inside the running event loop (the client holds an aiohttp session).
    Whatever the client raises becomes a result: an error nobody foresaw is
    worth a retry (the batch waits in the spool, the log says why), never
    an exception that loses the batch."""

    def __init__(self, config: InfluxConfig, token: str | None) -> None:
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        assert config.url is not None
        self.bucket, self.org = config.bucket, config.org
        self._secrets = [s for s in (token, url_password(config.url)) if s]
        self._client = InfluxDBClientAsync(
            url=config.url,
            token=token or "",
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            verify_ssl=config.verify_tls,
        )
        self._api = self._client.write_api()
        self._errors = _client_errors()

    async def write(self, lines: list[str]) -> WriteResult:
        body = "\n".join(lines).encode()
        try:
            await self._api.write(self.bucket, self.org, record=body)
        except Exception as exc:
            if isinstance(exc, self._errors):
                return self._redacted(classify(exc))
            # the client's own refusals (ValueError, ...)
            return self._redacted(WriteResult(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}"))
        return WriteResult(Outcome.WRITTEN, 204)

    def _redacted(self, result: WriteResult) -> WriteResult:
        message = result.message
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return dataclasses.replace(result, message=message)

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]
