"""Where and how the OTLP exporter sends: the `otlp:` section of the agent's
configuration and OpenTelemetry's own environment variables, which win over
it as OpenTelemetry's configuration specification has them win. The
official exporter reads OTEL_EXPORTER_OTLP_* itself: this module hands it a
file's setting only where the environment says nothing, and checks the
environment's values first, so a bad one is an error naming the variable
rather than a warning and a default."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.networks import HttpUrl

from sauron.host.field_errors import field_problems
from sauron.host.redaction import shown_url
from sauron.host.yamlfile import FileProblems

#: where the OTLP/HTTP metrics go under a base endpoint (the specification's path)
METRICS_PATH = "v1/metrics"
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
METRICS_ENDPOINT = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
#: the generic variable and its metrics-only one, for each setting the file has too
VARIABLES = {
    "endpoint": (METRICS_ENDPOINT, ENDPOINT),
    "headers": ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
    "timeout_s": ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
    "compression": ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"),
}
Compression = Literal["none", "gzip", "deflate"]


class OtlpSettingsError(FileProblems):
    """OTLP settings that cannot be used."""


class OtlpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the Collector's OTLP/HTTP base URL (http://collector:4318; metrics go
    #: to its /v1/metrics), as OTEL_EXPORTER_OTLP_ENDPOINT; no endpoint here
    #: nor in the environment: no OTLP export
    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] | None = None
    #: HTTP headers sent with every export (an API key, a tenant); never logged
    headers: dict[str, str] = {}
    #: one export's limit, the exporter's own retries included
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    #: the request body's compression
    compression: Compression = "none"
    #: resource attributes beside service.name, service.version,
    #: service.instance.id and host.name (OTEL_RESOURCE_ATTRIBUTES wins)
    resource_attributes: dict[str, str] = {}
    #: the resource's service.name (OTEL_SERVICE_NAME wins)
    service_name: Annotated[str, Field(min_length=1)] = "sauron"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() and str() show the headers' names only: they carry keys."""
        for name, value in super().__repr_args__():
            yield name, sorted(value) if name == "headers" else value


def _set(variables: tuple[str, ...], environ: Mapping[str, str]) -> str | None:
    """The first of `variables` the environment sets (the metrics-only one first)."""
    return next((environ[v] for v in variables if environ.get(v)), None)


def enabled(config: OtlpConfig, environ: Mapping[str, str] | None = None) -> bool:
    """An endpoint in the file or the environment."""
    environ = os.environ if environ is None else environ
    return config.endpoint is not None or _set(VARIABLES["endpoint"], environ) is not None


def exporter_arguments(
    config: OtlpConfig, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """OTLPMetricExporter's arguments: the file's settings the environment
    does not set (an argument would win over the variable in the
    exporter). Raises OtlpSettingsError naming a variable it cannot use."""
    environ = os.environ if environ is None else environ
    _check_environment(environ)
    args: dict[str, Any] = {}
    if _set(VARIABLES["endpoint"], environ) is None and config.endpoint is not None:
        args["endpoint"] = f"{config.endpoint.rstrip('/')}/{METRICS_PATH}"
    if _set(VARIABLES["headers"], environ) is None and config.headers:
        args["headers"] = dict(config.headers)
    if _set(VARIABLES["timeout_s"], environ) is None:
        args["timeout"] = config.timeout_s
    if _set(VARIABLES["compression"], environ) is None:
        args["compression"] = config.compression
    return args


class _Environment(BaseModel):
    """What the exporter would otherwise take with a warning and a default."""

    model_config = ConfigDict(extra="forbid")

    endpoint: HttpUrl | None = None
    timeout_s: Annotated[float, Field(gt=0, le=300)] | None = None
    compression: Compression | None = None


def _check_environment(environ: Mapping[str, str]) -> None:
    given: dict[str, str] = {}
    names: list[str] = []
    for name in ("endpoint", "timeout_s", "compression"):
        for variable in VARIABLES[name]:
            if environ.get(variable):
                given[name] = (
                    environ[variable].strip().lower()
                    if name == "compression"
                    else environ[variable]
                )
                names.append(variable)
                break
    try:
        _Environment.model_validate(given)
    except ValidationError as exc:
        raise OtlpSettingsError("environment " + ", ".join(names), field_problems(exc)) from None


def endpoint_url(config: OtlpConfig, environ: Mapping[str, str] | None = None) -> str:
    """Where the metrics go, as the exporter resolves it, without a password."""
    environ = os.environ if environ is None else environ
    url = environ.get(METRICS_ENDPOINT)
    if not url:
        base = environ.get(ENDPOINT) or config.endpoint or ""
        url = f"{base.rstrip('/')}/{METRICS_PATH}"
    return shown_url(url)
