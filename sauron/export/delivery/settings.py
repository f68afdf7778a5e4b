"""The settings every lossless exporter shares (where it writes, its
credentials, batches, queue, spool, retry), the environment applied over a
configuration file's section, and reading a token from its file. Each
exporter's section adds its own keys and its own spool directory."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from sauron.host.field_errors import field_problems
from sauron.host.redaction import shown_url
from sauron.host.secretfile import read_secret_file
from sauron.host.yamlfile import FileProblems


class DeliveryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the server's URL; no URL, no writing
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] | None = None
    #: the API token (prefer token_file or the environment; never logged)
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
    #: (one directory per exporter)
    spool_dir: Path
    #: the spool's size limit; beyond it the oldest points are dropped and counted
    spool_max_bytes: Annotated[int, Field(ge=4096)] = 256 * 1024 * 1024
    #: retry after a connection error, 5xx or 429: doubling from the first
    #: delay up to the largest, with jitter, or as Retry-After says
    retry_first_s: Annotated[float, Field(gt=0)] = 1.0
    #: the longest delay between retries
    retry_max_s: Annotated[float, Field(gt=0)] = 60.0
    #: after 401/403/404 (bad credentials; unknown org, bucket or tenant): one
    #: attempt per this many seconds, not a retry storm; points wait in the spool
    rejected_retry_s: Annotated[float, Field(gt=0)] = 300.0
    #: on SIGTERM the queue is written or spooled, then the spool replayed
    #: for at most this long; what is left waits on disk for the next start
    shutdown_timeout_s: Annotated[float, Field(ge=0, le=600)] = 5.0

    @model_validator(mode="after")
    def _one_token_source(self) -> DeliveryConfig:
        if self.token is not None and self.token_file is not None:
            raise ValueError("give token or token_file, not both")
        credentials = self.url is not None and "@" in urlsplit(self.url).netloc
        if credentials and (self.token is not None or self.token_file is not None):
            # the server takes one or the other: nothing would be written
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


Config = TypeVar("Config", bound=DeliveryConfig)


def with_variables(
    config: Config,
    variables: Mapping[str, str],
    error: type[FileProblems],
    environ: Mapping[str, str] | None = None,
) -> Config:
    """The configuration with the environment `variables` (name -> field)
    applied over it. A token from the environment replaces a token file
    from the configuration, and the other way round."""
    environ = os.environ if environ is None else environ
    update: dict[str, object] = {}
    for variable, name in variables.items():
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
        return type(config).model_validate(merged)
    except ValidationError as exc:
        names = [v for v in variables if v in environ]
        raise error("environment " + ", ".join(names), field_problems(exc)) from None


def read_token(config: DeliveryConfig, what: str, error: type[FileProblems]) -> str | None:
    """The token, from the configuration or its file (first line; the file
    must be the agent's own, see secretfile); `what` names it in errors."""
    if config.token is not None:
        return config.token.get_secret_value()
    if config.token_file is None:
        return None
    token = read_secret_file(config.token_file, f"{what} token file", error)
    if not token:
        raise error(config.token_file, [f"the {what} token file is empty"])
    return token
