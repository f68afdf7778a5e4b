"""Async client of the agent's API (aiohttp). Answers come back as the typed
models of sauron.service.schemas; errors as ApiError with the problem
details the agent sent.

    async with SauronClient("http://127.0.0.1:8080", token=...) as api:
        for s in (await api.slices()).slices:
            print(s.name, s.status)
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel

from sauron.service import schemas
from sauron.service.events import SNAPSHOT, EventStreamReader

DEFAULT_URL = "http://127.0.0.1:8080"
Model = TypeVar("Model", bound=BaseModel)


#: status of an ApiError when no agent answered at all
UNREACHABLE = 0


class ApiError(Exception):
    """The agent said no (problem details), or could not be reached
    (status UNREACHABLE); `hint` says what to do about it."""

    def __init__(self, status: int, title: str, detail: str, param: str | None = None) -> None:
        self.status, self.title, self.detail, self.param = status, title, detail, param
        where = f" (parameter {param})" if param else ""
        said = f"{title}: {detail}" if status == UNREACHABLE else f"{status} {title}: {detail}"
        super().__init__(said + where)

    @property
    def hint(self) -> str:
        if self.status == UNREACHABLE:
            return (
                "no agent answers there: start one (sauron run --config FILE), "
                "or name the one you mean with --url or SAURON_URL"
            )
        if self.status in (401, 403):
            return "the agent asks for its token: --token-file FILE, or SAURON_TOKEN"
        return ""

    def document(self) -> dict[str, object]:
        """The error as --json prints it."""
        return {
            "error": {
                "status": self.status,
                "title": self.title,
                "detail": self.detail,
                "param": self.param,
                "hint": self.hint,
            }
        }


#: seconds an idle connection is kept for reuse, below the agent's IDLE_S
KEEPALIVE_S = 3.0


class SauronClient:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        # unix:/run/sauron/api.sock: the agent's UNIX socket (per-UE data without a token)
        self.socket_path = base_url.removeprefix("unix:") if base_url.startswith("unix:") else None
        self.base_url = "http://localhost" if self.socket_path else base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SauronClient:
        # the agent closes a connection idle for 5 s: reuse one for less than that
        connector: aiohttp.BaseConnector = (
            aiohttp.UnixConnector(self.socket_path, keepalive_timeout=KEEPALIVE_S)
            if self.socket_path
            else aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S)
        )
        self._session = aiohttp.ClientSession(
            headers=self.headers, timeout=self.timeout, connector=connector
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client as `async with SauronClient(...) as api`")
        return self._session

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self.session.get(self.base_url + path, params=query) as r:
                body = await r.text()
                if r.status >= 400:
                    raise _problem(r.status, r.reason or "", body)
                return json.loads(body) if "json" in (r.content_type or "") else body
        except aiohttp.ClientError as exc:
            raise ApiError(
                UNREACHABLE, "cannot reach the agent", f"{self.base_url}: {exc}"
            ) from None

    async def _model(
        self, model: type[Model], path: str, params: Mapping[str, Any] | None = None
    ) -> Model:
        return model.model_validate(await self._get(path, params))

    # --- the routes -----------------------------------------------------------

    async def health(self) -> schemas.Health:
        return await self._model(schemas.Health, "/healthz")

    async def ready(self) -> bool:
        try:
            await self._get("/readyz")
        except ApiError as exc:
            if exc.status == 503:
                return False
            raise
        return True

    async def slices(self) -> schemas.SliceList:
        return await self._model(schemas.SliceList, "/api/v1/slices")

    async def slice(self, name: str) -> schemas.SliceDoc:
        return await self._model(schemas.SliceDoc, f"/api/v1/slices/{_segment(name)}")

    async def kpis(
        self,
        name: str,
        since: float | None = None,
        until: float | None = None,
        step: float | None = None,
    ) -> schemas.KpiSeries:
        return await self._model(
            schemas.KpiSeries,
            f"/api/v1/slices/{_segment(name)}/kpis",
            {"since": since, "until": until, "step": step},
        )

    async def histogram(
        self,
        name: str,
        metric: str,
        direction: schemas.DirectionName | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> schemas.HistogramDoc:
        return await self._model(
            schemas.HistogramDoc,
            f"/api/v1/slices/{_segment(name)}/histograms/{_segment(metric)}",
            {"direction": direction, "since": since, "until": until},
        )

    async def sessions(
        self, name: str, by: schemas.SessionsBy = "teid", limit: int = 10
    ) -> schemas.Sessions:
        """A slice's busiest sessions in the latest interval, by TEID or UE."""
        return await self._model(
            schemas.Sessions,
            f"/api/v1/slices/{_segment(name)}/sessions",
            {"by": by, "limit": limit},
        )

    async def pdu_sessions(
        self,
        state: schemas.SessionState = "active",
        slice_name: str | None = None,
        ue: str | None = None,
        limit: int | None = None,
        source: schemas.SessionSource = "any",
    ) -> schemas.PduSessions:
        """The session table: PDU sessions learned from PFCP or an SMF."""
        params = {"state": state, "slice": slice_name, "ue": ue, "limit": limit, "source": source}
        return await self._model(schemas.PduSessions, "/api/v1/sessions", params)

    async def diagnosis(self, name: str, limit: int = 10) -> schemas.DiagnosisReport:
        """Why a slice is late or lossy: its latest diagnoses, newest first."""
        return await self._model(
            schemas.DiagnosisReport,
            f"/api/v1/slices/{_segment(name)}/diagnosis",
            {"limit": limit},
        )

    async def security(
        self, since: float | None = None, until: float | None = None
    ) -> schemas.SecurityReport:
        """Every slice's failed security checks over a window (default:
        every interval the agent keeps), and the detections overlapping it."""
        return await self._model(
            schemas.SecurityReport, "/api/v1/security", {"since": since, "until": until}
        )

    async def slice_security(
        self, name: str, since: float | None = None, until: float | None = None
    ) -> schemas.SliceSecurityReport:
        """One slice's failed security checks over a window, and its detections."""
        return await self._model(
            schemas.SliceSecurityReport,
            f"/api/v1/slices/{_segment(name)}/security",
            {"since": since, "until": until},
        )

    async def sla(self) -> schemas.SlaReport:
        return await self._model(schemas.SlaReport, "/api/v1/sla")

    async def energy(
        self, since: float | None = None, until: float | None = None
    ) -> schemas.EnergyReport:
        return await self._model(
            schemas.EnergyReport, "/api/v1/energy", {"since": since, "until": until}
        )

    async def pm(self, since: float | None = None, until: float | None = None) -> schemas.PmReport:
        """3GPP performance measurements per S-NSSAI (TS 28.552, TS 28.554)."""
        return await self._model(schemas.PmReport, "/api/v1/pm", {"since": since, "until": until})

    async def metrics(self) -> str:
        text: str = await self._get("/metrics")
        return text

    async def openapi(self) -> dict[str, Any]:
        doc: dict[str, Any] = await self._get("/api/v1/openapi.json")
        return doc

    async def stream(
        self, reconnect: bool = False, retry_s: float = 1.0, max_retry_s: float = 30.0
    ) -> AsyncIterator[schemas.SnapshotDoc]:
        """Each new snapshot, as the agent publishes it, until closed. With
        `reconnect`, a stream that ends or breaks after it was open is
        opened again (after the server's `retry`, else `retry_s` doubling
        up to `max_retry_s`, with the last event id it gave); a first
        connection that fails raises as without."""
        reader = EventStreamReader()
        delay, opened = retry_s, False
        while True:
            headers = {"Last-Event-ID": reader.last_id} if reader.last_id else {}
            try:
                async with self.session.get(
                    self.base_url + "/api/v1/stream",
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
                ) as r:
                    if r.status >= 400:
                        raise _problem(r.status, r.reason or "", await r.text())
                    opened, delay = True, retry_s
                    text = codecs.getincrementaldecoder("utf-8")()
                    async for chunk in r.content.iter_any():
                        for event in reader.feed(text.decode(chunk)):
                            if event.type == SNAPSHOT:
                                yield schemas.SnapshotDoc.model_validate_json(event.data)
            except aiohttp.ClientError as exc:
                if not (reconnect and opened):
                    raise ApiError(
                        UNREACHABLE, "cannot reach the agent", f"{self.base_url}: {exc}"
                    ) from None
            if not reconnect:
                return
            reader.restart()  # a half-received event is dropped, as the standard says
            wait = reader.retry_ms / 1000 if reader.retry_ms is not None else delay
            await asyncio.sleep(wait)
            delay = min(delay * 2, max_retry_s)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _problem(status: int, reason: str, body: str) -> ApiError:
    try:
        doc = json.loads(body)
        return ApiError(status, doc.get("title", reason), doc.get("detail", ""), doc.get("param"))
    except (ValueError, AttributeError):
        return ApiError(status, reason, body[:200])
