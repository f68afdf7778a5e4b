"""The agent configuration's `control_plane` section: where sessions are
learned from."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from sauron.host.namespace_ref import NamespaceRef


class PfcpWatchConfig(BaseModel):
    """An interface that carries N4 (the UPF's or the SMF's, or a mirror
    port), in a network namespace when named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the link that carries N4
    name: Annotated[str, Field(min_length=1, max_length=15, pattern=r"^[A-Za-z0-9_.:@-]+$")]
    #: as an interface's netns: a name, a path, pid:N, process:NAME or container:NAME
    netns: NamespaceRef | None = None


class SmfFeedConfig(BaseModel):
    """An Open5GS SMF's metrics server, e.g. http://127.0.0.4:9090 (its
    `/pdu-info` is read)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the SMF's metrics server
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
    #: seconds between two readings of its session list
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    #: one request's limit
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    #: Open5GS serves at most 100 UEs per page
    page_size: Annotated[int, Field(ge=1, le=100)] = 100


class ControlPlaneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pfcp: list[PfcpWatchConfig] = []
    open5gs_smf: list[SmfFeedConfig] = []
