"""One write request to the server through influxdb-client's async API, and
what its answer means for the batch (sauron.export.delivery.outcome): a
refusal of who we are is a bad token, an unknown org or bucket."""

from __future__ import annotations

from typing import Any

import aiohttp

from sauron.export.delivery.outcome import Outcome, WriteResult, by_status, redacted
from sauron.export.influx.settings import InfluxConfig
from sauron.host.redaction import url_password


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
        return by_status(status, message, headers.get("Retry-After"))
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
        return redacted(result, self._secrets)

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]
