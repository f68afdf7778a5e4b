"""The agent's configuration file: which interfaces carry which reference
point, the slice catalog, and (as later parts land) the service and
publisher. Errors name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sauron.yamlfile import FileProblems, read_yaml

#: N3 (gNB side) and N9 (peer UPF) carry GTP-U; N6 carries plain IP.
Role = Literal["n3", "n9", "n6"]
GTPU_ROLES = ("n3", "n9")


class ConfigError(FileProblems):
    """An agent configuration that cannot be used."""


class InterfaceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=15, pattern=r"^[A-Za-z0-9_.:@-]+$")]
    role: Role
    netns: str | None = None
    #: generic (SKB) XDP works on every driver; native needs driver support
    xdp_mode: Literal["generic", "native"] = "generic"
    #: egress is seen with a TC clsact filter (both directions where the UPF sends)
    tc_egress: bool = True


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    node: Annotated[str, Field(min_length=1)] = "upf-1"
    catalog: Path | None = None
    interfaces: Annotated[list[InterfaceConfig], Field(min_length=1)]
    interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0

    @model_validator(mode="after")
    def _distinct_interfaces(self) -> AgentConfig:
        seen: set[tuple[str | None, str]] = set()
        for itf in self.interfaces:
            key = (itf.netns, itf.name)
            if key in seen:
                raise ValueError(f"interface {itf.name!r} listed twice")
            seen.add(key)
        return self


def load_config(path: Path | str) -> AgentConfig:
    path = Path(path)
    raw = read_yaml(path, ConfigError)
    try:
        config = AgentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(top level)"
            problems.append(f"field {where}: {e['msg']}")
        raise ConfigError(path, problems) from None
    if config.catalog is not None and not config.catalog.is_absolute():
        config = config.model_copy(update={"catalog": (path.parent / config.catalog).resolve()})
    return config
