"""Where and how the remote-write exporter writes: the `remote_write:`
section of the agent's configuration, with the environment taking
precedence (SAURON_REMOTE_WRITE_URL, _TOKEN, _TOKEN_FILE, _USERNAME,
_PASSWORD_FILE), as for the InfluxDB publisher. Credentials are a bearer
token or basic auth (a user and a password file), never both; extra
headers carry what a receiver needs besides (X-Scope-OrgID, a Mimir or
Cortex tenant). Secrets never appear in a repr, a log line or an error."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, model_validator

from sauron.export.delivery.settings import DeliveryConfig, read_token, with_variables
from sauron.host.secretfile import read_secret_file
from sauron.host.yamlfile import FileProblems

ENVIRONMENT = {
    "SAURON_REMOTE_WRITE_URL": "url",
    "SAURON_REMOTE_WRITE_TOKEN": "token",
    "SAURON_REMOTE_WRITE_TOKEN_FILE": "token_file",
    "SAURON_REMOTE_WRITE_USERNAME": "username",
    "SAURON_REMOTE_WRITE_PASSWORD_FILE": "password_file",
}
#: beside the InfluxDB publisher's spool files, in their own directory: a volume
#: that keeps the one (the Kubernetes DaemonSet's hostPath) keeps both
DEFAULT_SPOOL = Path("/var/lib/sauron/spool/remote-write")
#: headers the protocol or the credentials set: not configurable as extra headers
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "content-encoding",
        "content-length",
        "content-type",
        "host",
        "x-prometheus-remote-write-version",
    }
)
LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")]
HeaderValue = Annotated[str, Field(pattern=r"^[^\r\n]*$")]


class RemoteWriteSettingsError(FileProblems):
    """Remote-write settings that cannot be used."""


class RemoteWriteConfig(DeliveryConfig):
    #: the receiver's remote write URL, e.g. http://victoria-metrics:8428/api/v1/write,
    #: http://mimir:8080/api/v1/push; no URL, no remote write
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] | None = None
    #: a bearer token (prefer token_file or SAURON_REMOTE_WRITE_TOKEN; never logged)
    token: SecretStr | None = None
    #: where samples the receiver could not take wait on disk, replayed in
    #: order; not the InfluxDB publisher's spool
    spool_dir: Path = DEFAULT_SPOOL
    #: basic auth: the user (with password_file; instead of a token)
    username: Annotated[str, Field(min_length=1)] | None = None
    #: basic auth: a file holding the password (first line)
    password_file: Path | None = None
    #: labels added to every series, as Prometheus' external_labels (a series'
    #: own label of the same name wins); `instance` (the node's name) and `job`
    #: (`sauron`) are added unless given here, so that dashboards and alerts
    #: made for scraped agents tell the nodes apart alike
    external_labels: dict[LabelName, str] = Field(default_factory=dict)
    #: extra request headers, e.g. {X-Scope-OrgID: tenant-a} for a Mimir tenant
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_way_in(self) -> RemoteWriteConfig:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("basic auth needs both username and password_file")
        if self.username is not None and (self.token is not None or self.token_file is not None):
            raise ValueError("give a token or basic auth (username, password_file), not both")
        reserved = sorted(h for h in self.headers if h.lower() in RESERVED_HEADERS)
        if reserved:
            raise ValueError(
                f"headers: {', '.join(reserved)} is set by the protocol or the credentials "
                "(token, username), not as an extra header"
            )
        return self


def with_environment(
    config: RemoteWriteConfig, environ: Mapping[str, str] | None = None
) -> RemoteWriteConfig:
    """The configuration with SAURON_REMOTE_WRITE_* applied over it. A token
    from the environment replaces a token file from the configuration, and
    the other way round."""
    return with_variables(config, ENVIRONMENT, RemoteWriteSettingsError, environ)


def read_credentials(config: RemoteWriteConfig) -> tuple[str | None, str | None]:
    """(token, password), from the configuration or their files (first
    line; a file must be the agent's own, see secretfile)."""
    token = read_token(config, "remote write", RemoteWriteSettingsError)
    if config.password_file is None:
        return token, None
    password = read_secret_file(
        config.password_file, "remote write password file", RemoteWriteSettingsError
    )
    if not password:
        raise RemoteWriteSettingsError(
            config.password_file, ["the remote write password file is empty"]
        )
    return token, password
