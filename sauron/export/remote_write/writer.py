"""One remote write 1.0 request: the batch's samples as a protobuf
WriteRequest, snappy-compressed (block format, as the protocol asks),
POSTed with the protocol's headers and the configured credentials and
extra headers; the answer becomes a WriteResult
(sauron.export.delivery.outcome). Snappy is cramjam's: prebuilt wheels
for every platform the agent runs on, no system libsnappy to install."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import aiohttp
import cramjam

from sauron.export.delivery.outcome import Outcome, WriteResult, by_status, redacted
from sauron.export.remote_write.protobuf import write_request
from sauron.export.remote_write.samples import SampleLineError, parse
from sauron.export.remote_write.settings import RemoteWriteConfig
from sauron.host.redaction import url_password

PROTOCOL_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
#: what the log keeps of a refusal's body
MESSAGE_CHARS = 300


def authorization(token: str | None, username: str | None, password: str | None) -> str | None:
    """The Authorization header: a bearer token or basic auth (or none)."""
    if token:
        return f"Bearer {token}"
    if username is not None:
        pair = f"{username}:{password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode()
    return None


class RemoteWriteWriter:
    """Made inside the running event loop (it holds an aiohttp session).
    Whatever the request meets becomes a result: an error nobody foresaw
    is worth a retry (the batch waits in the spool), never an exception
    that loses the batch."""

    def __init__(
        self,
        config: RemoteWriteConfig,
        token: str | None,
        password: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        assert config.url is not None
        self.url = config.url
        #: added to every series that does not name them itself
        self.labels = dict(labels or {})
        self.headers = {**config.headers, **PROTOCOL_HEADERS}
        auth = authorization(token, config.username, password)
        if auth is not None:
            self.headers["Authorization"] = auth
        self._secrets = [s for s in (token, password, url_password(config.url), auth) if s]
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=config.timeout_s),
            connector=aiohttp.TCPConnector(ssl=config.verify_tls),
        )

    async def write(self, lines: list[str]) -> WriteResult:
        try:
            samples = [parse(text) for text in lines]
        except SampleLineError as exc:  # not ours: the server could not take it either
            return WriteResult(Outcome.INVALID, None, str(exc))
        body = bytes(cramjam.snappy.compress_raw(write_request(samples, self.labels)))
        try:
            async with self._session.post(self.url, data=body, headers=self.headers) as answer:
                if 200 <= answer.status < 300:
                    return WriteResult(Outcome.WRITTEN, answer.status)
                text = (await answer.text(errors="replace"))[:MESSAGE_CHARS].strip()
                result = by_status(answer.status, text, answer.headers.get("Retry-After"))
        except TimeoutError:
            return WriteResult(Outcome.RETRY, None, "timed out")
        except Exception as exc:  # connection refused, reset, a client refusal
            message = str(exc) or type(exc).__name__
            return redacted(WriteResult(Outcome.RETRY, None, message), self._secrets)
        return redacted(result, self._secrets)

    async def close(self) -> None:
        await self._session.close()
