"""Where and how the publisher writes: the `influx:` section of the agent's
configuration, with the environment taking precedence (SAURON_INFLUX_URL,
_ORG, _BUCKET, _TOKEN, _TOKEN_FILE), so `sauron run` and `sauron demo`
publish alike. The token is a secret: it never appears in a repr, a log
line or an error; nor does a password in the URL (`shown_url`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from sauron.host.field_errors import field_problems
from sauron.host.redaction import shown_url
from sauron.host.secretfile import read_secret_file
from sauron.host.yamlfile import FileProblems

ENVIRONMENT = {
    "SAURON_INFLUX_URL": "url",
    "SAURON_INFLUX_ORG": "org",
    "SAURON_INFLUX_BUCKET": "bucket",
    "SAURON_INFLUX_TOKEN": "token",
    "SAURON_INFLUX_TOKEN_FILE": "token_file",
}
DEFAULT_SPOOL = Path("/var/lib/sauron/spool")


class InfluxSettingsError(FileProblems):
    """Publisher settings that cannot be used."""


class InfluxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the server's base URL (http://host:8086); no URL, no publishing
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] | None = None
    #: the InfluxDB organisation
    org: Annotated[str, Field(min_length=1)] = "sauron"
    #: the bucket written to
    bucket: Annotated[str, Field(min_length=1)] = "sauron"
    #: the API token (prefer token_file or SAURON_INFLUX_TOKEN; never logged)
    token: SecretStr | None = None
    #: a file holding the token (first line)
    token_file: Path | None = None
    #: check the server's certificate on https
    verify_tls: bool = True
    #: one write request's limit, connection included
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    #: points per write request
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    #: the longest a point waits in the queue before a write
    flush_interval_s: Annotated[float, Field(gt=0, le=300)] = 1.0
    #: points held in memory waiting for a write; beyond it they go to the spool
    queue_points: Annotated[int, Field(ge=1)] = 100_000
    #: where points the server could not take wait on disk, replayed in order
    spool_dir: Path = DEFAULT_SPOOL
    #: the spool's size limit; beyond it the oldest points are dropped and counted
    spool_max_bytes: Annotated[int, Field(ge=4096)] = 256 * 1024 * 1024
    #: retry after a connection error, 5xx or 429: doubling from the first
    #: delay up to the largest, with jitter, or as Retry-After says
    retry_first_s: Annotated[float, Field(gt=0)] = 1.0
    #: the longest delay between retries
    retry_max_s: Annotated[float, Field(gt=0)] = 60.0
    #: after 401/403/404 (bad token, unknown org or bucket): one attempt per
    #: this many seconds, not a retry storm; points wait in the spool
    rejected_retry_s: Annotated[float, Field(gt=0)] = 300.0
    #: on SIGTERM the queue is written or spooled, then the spool replayed
    #: for at most this long; what is left waits on disk for the next start
    shutdown_timeout_s: Annotated[float, Field(ge=0, le=600)] = 5.0
    #: the N sessions (TEID or UE) that carried the most bytes per slice and
    #: interval, as their own series; 0 keeps per-session series out
    top_sessions: Annotated[int, Field(ge=0, le=100)] = 0

    @model_validator(mode="after")
    def _one_token_source(self) -> InfluxConfig:
        if self.token is not None and self.token_file is not None:
            raise ValueError("give token or token_file, not both")
        credentials = self.url is not None and "@" in urlsplit(self.url).netloc
        if credentials and (self.token is not None or self.token_file is not None):
            # the client refuses every write with both: nothing would be published
            raise ValueError(
                "url holds credentials (user:password@) and a token is given too: "
                "the server takes one or the other; keep the token and drop them from url"
            )
        if self.retry_max_s < self.retry_first_s:
            raise ValueError("retry_max_s is below retry_first_s")
        return self

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() and str() show the URL without its password, as logs may."""
        for name, value in super().__repr_args__():
            yield name, shown_url(value) if name == "url" and value else value

    @property
    def shown_url(self) -> str | None:
        """The URL with any password in it replaced (what may be shown)."""
        return None if self.url is None else shown_url(self.url)


def with_environment(
    config: InfluxConfig, environ: Mapping[str, str] | None = None
) -> InfluxConfig:
    """The configuration with SAURON_INFLUX_* applied over it. A token from
    the environment replaces a token file from the configuration, and the
    other way round."""
    environ = os.environ if environ is None else environ
    update: dict[str, object] = {}
    for variable, name in ENVIRONMENT.items():
        value = environ.get(variable)
        if value:
            update[name] = value
    if not update:
        return config
    if "token" in update:
        update.setdefault("token_file", None)
    elif "token_file" in update:
        update["token"] = None
    merged = config.model_dump()
    merged.update(update)
    try:
        return InfluxConfig.model_validate(merged)
    except ValidationError as exc:
        names = [v for v in ENVIRONMENT if v in environ]
        raise InfluxSettingsError("environment " + ", ".join(names), field_problems(exc)) from None


def read_influx_token(config: InfluxConfig) -> str | None:
    """The token, from the configuration or its file (first line; the file
    must be the agent's own, see secretfile)."""
    if config.token is not None:
        return config.token.get_secret_value()
    if config.token_file is None:
        return None
    token = read_secret_file(config.token_file, "InfluxDB token file", InfluxSettingsError)
    if not token:
        raise InfluxSettingsError(config.token_file, ["the InfluxDB token file is empty"])
    return token
