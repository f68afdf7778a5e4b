"""The Open5GS SMF session feed: the SMF's JSON session list (`/pdu-info`
on its metrics port, Open5GS 2.7.7 and later), polled, paged, and read into
the same session table the PFCP learner fills, so a deployment with that
SMF needs no access to N4.

The shape read here is the one Open5GS documents in src/smf/pdu-info.c:
`{"items": [{"supi", "pdu": [{"psi", "dnn", "ipv4", "ipv6", "snssai":
{"sst", "sd"}, "qos_flows": [{"qfi", "5qi"}], "n3": {"gnb": {"teid",
"addr"}, "upf": {"teid", "addr", "pdr_id"}}, "pdu_state"}], "ue_activity"}],
"pager": {"page", "page_size", "count", "next"}}`, addresses written
"[a.b.c.d]:2152"."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sauron.control.record import ControlSession, Tunnel
from sauron.control.registry import SessionRegistry
from sauron.host.redaction import shown_url, url_password

log = logging.getLogger(__name__)

#: pages followed in one poll at most (page_size 100: 100 000 UEs)
MAX_PAGES = 1000


class _Lenient(BaseModel):
    # the SMF may add fields in later versions: they are ignored
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class N3End(_Lenient):
    teid: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] | None = None
    addr: str | None = None


class N3(_Lenient):
    gnb: N3End | None = None
    upf: N3End | None = None


class Snssai(_Lenient):
    sst: Annotated[int, Field(ge=0, le=255)]
    sd: str | None = None


class QosFlow(_Lenient):
    qfi: Annotated[int, Field(ge=0, le=63)] | None = None
    five_qi: int | None = Field(default=None, alias="5qi")


class Pdu(_Lenient):
    psi: int | None = None
    ebi: int | None = None
    dnn: str | None = None
    apn: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    snssai: Snssai | None = None
    qos_flows: list[QosFlow] = []
    n3: N3 | None = None
    pdu_state: str | None = None


class UeItem(_Lenient):
    supi: str
    pdu: list[Pdu] = []


class Pager(_Lenient):
    page: int = 0
    page_size: int = 0
    count: int = 0
    next: str | None = None


class PduInfoPage(_Lenient):
    items: list[UeItem]
    pager: Pager | None = None


class FeedError(Exception):
    pass


def _address(text: str | None) -> str | None:
    """ "[192.168.168.7]:2152" -> "192.168.168.7"."""
    if not text:
        return None
    if text.startswith("["):
        return text[1 : text.index("]")] if "]" in text else text[1:]
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def sessions_of(page: PduInfoPage, url: str, now: float) -> list[ControlSession]:
    out = []
    for ue in page.items:
        for pdu in ue.pdu:
            ident = pdu.psi if pdu.psi is not None else pdu.ebi
            tunnels = []
            if pdu.n3 and pdu.n3.upf and pdu.n3.upf.teid:
                tunnels.append(Tunnel(pdu.n3.upf.teid, _address(pdu.n3.upf.addr), "access", True))
            if pdu.n3 and pdu.n3.gnb and pdu.n3.gnb.teid:
                tunnels.append(Tunnel(pdu.n3.gnb.teid, _address(pdu.n3.gnb.addr), "access", False))
            snssai = None
            if pdu.snssai is not None:
                sd = int(pdu.snssai.sd, 16) if pdu.snssai.sd else None
                snssai = (pdu.snssai.sst, sd)
            out.append(
                ControlSession(
                    source="smf",
                    key=(url, ue.supi, ident),
                    smf=url,
                    supi=ue.supi,
                    tunnels=sorted(tunnels, key=Tunnel.sort_key),
                    ue_addresses=[a for a in (pdu.ipv4, pdu.ipv6) if a],
                    snssai=snssai,
                    dnn=pdu.dnn or pdu.apn,
                    qfis=sorted({f.qfi for f in pdu.qos_flows if f.qfi is not None}),
                    first_seen=now,
                    last_seen=now,
                )
            )
    return out


class SmfFeed:
    """Polls one SMF every `interval_s`; each complete reading replaces that
    SMF's sessions in the registry. A failed reading changes nothing (the
    sessions stay as last read) and is reported in `status()`."""

    def __init__(
        self,
        url: str,
        registry: SessionRegistry,
        interval_s: float = 5.0,
        timeout_s: float = 3.0,
        page_size: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        # what logs, errors and the session sources show: no password
        self.shown = shown_url(self.url)
        self.secret = url_password(self.url)
        self.registry = registry
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.page_size = page_size
        self.clock = clock
        self.polls = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.sessions = 0

    async def fetch(self, http: aiohttp.ClientSession) -> list[ControlSession]:
        now = self.clock()
        sessions: list[ControlSession] = []
        for page_number in range(MAX_PAGES):
            query = f"/pdu-info?page={page_number}&page_size={self.page_size}"
            url, shown = self.url + query, self.shown + query
            try:
                async with http.get(url) as response:
                    if response.status != 200:
                        raise FeedError(f"{shown}: HTTP {response.status}")
                    raw: Any = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                said = f"{type(exc).__name__}: {exc}"
                if self.secret:  # the client's errors may quote the whole URL
                    said = said.replace(self.secret, "***")
                raise FeedError(f"{shown}: {said}") from None
            try:
                page = PduInfoPage.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise FeedError(f"{shown}: field {where}: {first['msg']}") from None
            sessions += sessions_of(page, self.shown, now)
            if page.pager is None or not page.pager.next:
                return sessions
        raise FeedError(f"{self.shown}: more than {MAX_PAGES} pages")

    async def poll_once(self, http: aiohttp.ClientSession) -> bool:
        self.polls += 1
        try:
            sessions = await self.fetch(http)
        except FeedError as exc:
            self.failures += 1
            self.consecutive_failures += 1
            if self.consecutive_failures == 1:
                log.warning("SMF session feed failed", extra={"url": self.shown, "error": str(exc)})
            self.last_error = str(exc)
            return False
        if self.consecutive_failures:
            log.info("SMF session feed back", extra={"url": self.shown})
        self.consecutive_failures = 0
        self.last_ok = self.clock()
        self.sessions = len(sessions)
        self.registry.replace_source("smf", sessions, scope=(self.shown,))
        self.registry.flush()
        return True

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                await self.poll_once(http)
                await asyncio.sleep(self.interval_s)

    def status(self) -> dict[str, Any]:
        return {
            "url": self.shown,
            "polls": self.polls,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "sessions": self.sessions,
        }
