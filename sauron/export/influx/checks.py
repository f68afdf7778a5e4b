"""`sauron doctor --influx`: can this agent publish? The settings in force
(never the token, nor a password in the URL), the server's answer to a
ping, whether it accepts our token for the org and bucket (an empty write:
nothing is stored), and the spool's state. Every check ends within its
bound and reports what it met: a server that never answers is a failed
check, never a hang or a traceback."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import aiohttp

from sauron.export.delivery.spool import SUFFIX
from sauron.export.influx.settings import InfluxConfig, InfluxSettingsError, read_influx_token
from sauron.host.checks import FAIL, PASS, Check
from sauron.host.redaction import shown_url, url_password


def _token_source(config: InfluxConfig) -> str:
    if os.environ.get("SAURON_INFLUX_TOKEN"):
        return "token from SAURON_INFLUX_TOKEN"
    if config.token_file is not None:
        return f"token from {config.token_file}"
    return "token in the configuration" if config.token is not None else "no token"


async def _probe(config: InfluxConfig, token: str | None) -> list[Check]:
    assert config.url is not None
    base = config.url.rstrip("/")
    shown = shown_url(base)
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)
    headers = {"Authorization": f"Token {token}"} if token else {}
    checks: list[Check] = []
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.get(f"{base}/ping", ssl=config.verify_tls) as r:
                version = r.headers.get("X-Influxdb-Version", "unknown version")
                reachable = r.status < 300
                checks.append(
                    Check(
                        "influx_reachable",
                        PASS if reachable else FAIL,
                        True,
                        f"{shown}/ping answered {r.status} ({version})",
                        "" if reachable else "is this the server's base URL?",
                    )
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            checks.append(
                Check(
                    "influx_reachable",
                    FAIL,
                    True,
                    f"{shown}: {exc or type(exc).__name__}",
                    "start the server or fix SAURON_INFLUX_URL / influx.url",
                )
            )
            return checks
        checks.append(await _write_check(session, config, base, headers))
    return checks


async def _write_check(
    session: aiohttp.ClientSession, config: InfluxConfig, base: str, headers: dict[str, str]
) -> Check:
    """An empty write: whether the server takes our token for the org and
    bucket (nothing is stored)."""
    where = f"org {config.org!r}, bucket {config.bucket!r}"
    params = {"org": config.org, "bucket": config.bucket, "precision": "ns"}
    try:
        async with session.post(
            f"{base}/api/v2/write", params=params, data=b"", headers=headers, ssl=config.verify_tls
        ) as r:
            said = (await r.text())[:200]
            status = r.status
    except TimeoutError:
        return Check(
            "influx_write",
            FAIL,
            True,
            f"{where}: no answer to a write within {config.timeout_s:g} s",
            "is the server overloaded, or something else on this port?",
        )
    except (aiohttp.ClientError, OSError) as exc:
        return Check("influx_write", FAIL, True, f"{where}: {exc or type(exc).__name__}")
    if status < 300 or status == 400:
        return Check("influx_write", PASS, True, f"{where}: writes accepted ({status})")
    remedy = {
        401: "the token is refused: check SAURON_INFLUX_TOKEN or the token file",
        403: "the token may not write to this bucket",
        404: "no such org or bucket: check influx.org and influx.bucket",
    }.get(status, "see the server's answer")
    return Check("influx_write", FAIL, True, f"{where}: {status} {said}", remedy)


def _spool_check(directory: Path) -> Check:
    files = list(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []
    points = sum(f.read_bytes().count(b"\n") for f in files)
    size = sum(f.stat().st_size for f in files)
    parent = directory if directory.exists() else directory.parent
    writable = os.access(parent, os.W_OK)
    return Check(
        "influx_spool",
        PASS if writable else FAIL,
        True,
        f"{directory}: {len(files)} batches waiting, {points} points, {size} bytes"
        + ("" if writable else "; not writable"),
        "" if writable else f"make {parent} writable by the agent",
    )


def probe_bound_s(config: InfluxConfig) -> float:
    """The longest the server checks may take: two requests, each within
    the configured timeout, and a second to spare."""
    return 2 * config.timeout_s + 1.0


async def _bounded_probe(config: InfluxConfig, token: str | None) -> list[Check]:
    bound = probe_bound_s(config)
    shown = shown_url(config.url or "")
    try:
        return await asyncio.wait_for(_probe(config, token), bound)
    except TimeoutError:
        return [
            Check(
                "influx_reachable",
                FAIL,
                True,
                f"{shown}: no complete answer within {bound:g} s",
                "is the server up and is this its base URL? (influx.timeout_s sets the bound)",
            )
        ]
    except Exception as exc:  # whatever the client meets is a failed check
        said = f"{type(exc).__name__}: {exc}"
        return [Check("influx_reachable", FAIL, True, f"{shown}: {said}", "see the error")]


def without_secrets(checks: list[Check], *secrets: str | None) -> list[Check]:
    """The checks with every secret in their words replaced by ***: the
    client's errors quote what they were given (an invalid URL's whole
    text, password included), so the reasons are cleaned, not composed
    with care one by one."""
    cleaned = []
    for check in checks:
        reason, remedy = check.reason, check.remedy
        for secret in secrets:
            if secret:
                reason, remedy = reason.replace(secret, "***"), remedy.replace(secret, "***")
        cleaned.append(replace(check, reason=reason, remedy=remedy))
    return cleaned


def influx_checks(config: InfluxConfig) -> list[Check]:
    if not config.enabled:
        return [
            Check(
                "influx_settings",
                FAIL,
                True,
                "no InfluxDB URL: set influx.url in the configuration or SAURON_INFLUX_URL",
            )
        ]
    try:
        token = read_influx_token(config)
    except InfluxSettingsError as exc:
        return [Check("influx_settings", FAIL, True, str(exc))]
    checks = [
        Check(
            "influx_settings",
            PASS,
            True,
            f"{config.shown_url}, org {config.org!r}, bucket {config.bucket!r}, "
            + _token_source(config),
        )
    ]
    checks += without_secrets(
        asyncio.run(_bounded_probe(config, token)), token, url_password(config.url)
    )
    checks.append(_spool_check(config.spool_dir))
    return checks
