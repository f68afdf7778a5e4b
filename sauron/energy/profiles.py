"""CPU power profiles (energy/*.yaml): what a package draws at rest and at
full load, for machines without RAPL. A profile is chosen by matching the
CPU's model name; a generic default covers unknown CPUs."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sauron.energy.units import Hertz, Watts
from sauron.host.field_errors import field_problems, yaml_lines_of
from sauron.host.yamlfile import FileProblems, read_yaml


class ProfileError(FileProblems):
    """A power profile that cannot be used."""


class PowerProfile(BaseModel):
    """One CPU package. Dynamic power (max_w - idle_w) is spread over the
    package's hardware threads at the nominal frequency: a busy thread at
    that clock draws (max_w - idle_w) / threads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    #: regular expression searched (case-insensitive) in /proc/cpuinfo's model name
    model_pattern: Annotated[str, Field(min_length=1)]
    #: the profile used when no other matches
    default: bool = False
    idle_w: Annotated[float, Field(ge=0)]
    max_w: Annotated[float, Field(gt=0)]
    cores: Annotated[int, Field(ge=1)]
    threads: Annotated[int, Field(ge=1)]
    nominal_mhz: Annotated[float, Field(gt=0)]
    #: where the figures come from, so an operator can judge them
    source: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> PowerProfile:
        if self.idle_w >= self.max_w:
            raise ValueError(f"idle_w ({self.idle_w}) must be below max_w ({self.max_w})")
        if self.threads < self.cores:
            raise ValueError(f"threads ({self.threads}) below cores ({self.cores})")
        try:
            re.compile(self.model_pattern)
        except re.error as exc:
            raise ValueError(f"model_pattern is not a regular expression: {exc}") from None
        return self

    @property
    def nominal_hz(self) -> Hertz:
        return Hertz(self.nominal_mhz * 1e6)

    @property
    def dynamic_w_per_thread(self) -> Watts:
        return Watts((self.max_w - self.idle_w) / self.threads)

    @property
    def idle_w_per_thread(self) -> Watts:
        return Watts(self.idle_w / self.threads)


def profile_json_schema() -> dict[str, Any]:
    return PowerProfile.model_json_schema()


def profiles_dir() -> Path:
    """The power profiles the package carries (energy/ at the repository's
    root points here)."""
    return Path(str(resources.files("sauron.energy") / "power_profiles"))


def load_profile(path: Path) -> PowerProfile:
    raw = read_yaml(path, ProfileError)
    try:
        return PowerProfile.model_validate(raw)
    except ValidationError as exc:
        problems = field_problems(exc, PowerProfile, lambda: yaml_lines_of(path))
        raise ProfileError(path, problems) from None


def load_profiles(directory: Path | None = None) -> list[PowerProfile]:
    directory = directory or profiles_dir()
    profiles = [load_profile(p) for p in sorted(directory.glob("*.yaml"))]
    names = [p.name for p in profiles]
    for name in set(names):
        if names.count(name) > 1:
            raise ProfileError(directory, [f"profile name {name!r} used twice"])
    if sum(p.default for p in profiles) != 1:
        raise ProfileError(directory, ["exactly one profile must be the default"])
    return profiles


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else ""


def choose_profile(
    profiles: list[PowerProfile], model_name: str, forced: str | None = None
) -> tuple[PowerProfile, str]:
    """The profile for a CPU and why it was chosen."""
    if forced is not None:
        for p in profiles:
            if p.name == forced:
                return p, f"profile {forced} set in the configuration"
        known = ", ".join(p.name for p in profiles)
        raise ProfileError(profiles_dir(), [f"no profile named {forced!r} (known: {known})"])
    for p in profiles:
        if not p.default and re.search(p.model_pattern, model_name, re.I):
            return p, f"CPU model {model_name!r} matches {p.model_pattern!r}"
    default = next(p for p in profiles if p.default)
    return default, f"no profile matches CPU model {model_name!r}: the generic default"
