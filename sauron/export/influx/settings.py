"""Where and how the publisher writes: the `influx:` section of the agent's
configuration, with the environment taking precedence (SAURON_INFLUX_URL,
_ORG, _BUCKET, _TOKEN, _TOKEN_FILE), so `sauron run` and `sauron demo`
publish alike. The token is a secret: it never appears in a repr, a log
line or an error; nor does a password in the URL (`shown_url`). The keys
it shares with every lossless exporter are sauron.export.delivery.settings'."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr

from sauron.export.delivery.settings import DeliveryConfig, read_token, with_variables
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


class InfluxConfig(DeliveryConfig):
    #: the server's base URL (http://host:8086); no URL, no publishing
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] | None = None
    #: the API token (prefer token_file or SAURON_INFLUX_TOKEN; never logged)
    token: SecretStr | None = None
    #: where points the server could not take wait on disk, replayed in order
    spool_dir: Path = DEFAULT_SPOOL
    #: the InfluxDB organisation
    org: Annotated[str, Field(min_length=1)] = "sauron"
    #: the bucket written to
    bucket: Annotated[str, Field(min_length=1)] = "sauron"
    #: the N sessions (TEID or UE) that carried the most bytes per slice and
    #: interval, as their own series; 0 keeps per-session series out
    top_sessions: Annotated[int, Field(ge=0, le=100)] = 0


def with_environment(
    config: InfluxConfig, environ: Mapping[str, str] | None = None
) -> InfluxConfig:
    """The configuration with SAURON_INFLUX_* applied over it. A token from
    the environment replaces a token file from the configuration, and the
    other way round."""
    return with_variables(config, ENVIRONMENT, InfluxSettingsError, environ)


def read_influx_token(config: InfluxConfig) -> str | None:
    """The token, from the configuration or its file (first line; the file
    must be the agent's own, see secretfile)."""
    return read_token(config, "InfluxDB", InfluxSettingsError)
