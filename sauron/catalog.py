"""The slice catalog: S-NSSAI, names, classification rules and SLA targets,
read from YAML in slices/. Errors name the file, the slice and the field."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from sauron.abi.kpis import LATENCY_KPIS, SECURITY_KPIS, SECURITY_SLA_KEY
from sauron.abi.layout import MAX_QFI, MAX_SLICES
from sauron.host.field_errors import Location, field_problems, yaml_lines_of
from sauron.host.yamlfile import FileProblems, read_yaml

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def default_catalog_path() -> Path:
    """The catalog the package carries (slices/ at the repository's root
    points here)."""
    return Path(str(resources.files("sauron") / "catalogs" / "default.yaml"))


class CatalogError(FileProblems):
    """A catalog that cannot be used, with every problem found."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Snssai(_Strict):
    """S-NSSAI (TS 23.003): SST 0-255 and an optional 24-bit SD."""

    sst: Annotated[int, Field(ge=0, le=255)]
    sd: int | None = None

    @field_validator("sd", mode="before")
    @classmethod
    def _parse_sd(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = int(value, 16)
            except ValueError as exc:
                raise ValueError("SD must be a 6-digit hex string or an integer") from exc
        if value is not None and not 0 <= int(value) <= 0xFFFFFF:
            raise ValueError("SD must fit in 24 bits (0 to 0xFFFFFF)")
        return value

    def __str__(self) -> str:
        return f"{self.sst}" if self.sd is None else f"{self.sst}-{self.sd:06x}"


def snssai_parts(snssai: str) -> dict[str, str]:
    """An S-NSSAI as written ("1-000001", "1", "") split into the `sst` and
    `sd` an export labels it with: absent parts are absent keys."""
    if not snssai:
        return {}
    sst, _, sd = snssai.partition("-")
    return {"sst": sst, "sd": sd} if sd else {"sst": sst}


class TeidRange(_Strict):
    first: Annotated[int, Field(ge=1, le=0xFFFFFFFF)]
    last: Annotated[int, Field(ge=1, le=0xFFFFFFFF)]

    @model_validator(mode="after")
    def _ordered(self) -> TeidRange:
        if self.last < self.first:
            raise ValueError(f"last (0x{self.last:x}) is below first (0x{self.first:x})")
        return self


class LatencyTarget(_Strict):
    """Upper bounds in milliseconds on percentiles of a latency metric."""

    p50: Annotated[float, Field(gt=0)] | None = None
    p90: Annotated[float, Field(gt=0)] | None = None
    p99: Annotated[float, Field(gt=0)] | None = None
    p999: Annotated[float, Field(gt=0)] | None = None


class DirectionalRate(_Strict):
    uplink: Annotated[float, Field(ge=0)] | None = None
    downlink: Annotated[float, Field(ge=0)] | None = None


#: A limit per security check (sauron.abi.kpis SECURITY_KPIS), in frames per
#: second of the slice's uplink G-PDUs that failed it; a type checker sees a
#: model with no field, code reads a kind's limit by its name
if TYPE_CHECKING:
    SecurityLimits = _Strict
else:
    SecurityLimits = create_model(
        "SecurityLimits",
        __base__=_Strict,
        __doc__="Most frames per second failing each security check.",
        **{
            kpi.name: (
                Annotated[float, Field(ge=0)] | None,
                Field(None, description=f"{kpi.help}: most frames per second"),
            )
            for kpi in SECURITY_KPIS
        },
    )


class _OtherTargets(_Strict):
    """What a slice promises beyond its latency KPIs."""

    max_loss_ratio: Annotated[float, Field(ge=0, le=1)] | None = None
    min_throughput_mbps: DirectionalRate | None = None
    max_throughput_mbps: DirectionalRate | None = None
    max_energy_j_per_gb: Annotated[float, Field(gt=0)] | None = None
    max_security_events_per_s: Annotated[
        SecurityLimits | None,
        Field(description="a limit per security check; a violation when one is exceeded"),
    ] = None


assert SECURITY_SLA_KEY in _OtherTargets.model_fields, "the security limits' key is the table's"


#: What a slice promises; evaluated by the KPI engine. A latency target per
#: latency KPI (sauron.abi.kpis: its SLA key), then the others; a type
#: checker sees only the others, code reads a latency target by its key
if TYPE_CHECKING:
    SlaTargets = _OtherTargets
else:
    SlaTargets = create_model(
        "SlaTargets",
        __base__=_OtherTargets,
        __doc__="What a slice promises; evaluated by the KPI engine.",
        **{
            kpi.sla_key: (
                LatencyTarget | None,
                Field(None, description=f"{kpi.help}: upper bounds in ms"),
            )
            for kpi in LATENCY_KPIS
        },
    )


class SliceSpec(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    id: Annotated[int, Field(ge=1, lt=MAX_SLICES)] | None = None
    snssai: Snssai
    description: str = ""
    ue_subnets: list[IpNetwork] = []
    teids: list[Annotated[int, Field(ge=1, le=0xFFFFFFFF)]] = []
    teid_ranges: list[TeidRange] = []
    qfis: list[Annotated[int, Field(ge=0, lt=MAX_QFI)]] = []
    #: DNNs of the slice's PDU sessions, for sessions learned from the
    #: control plane; a DNN also matches a PFCP Network Instance of the
    #: same name (Open5GS names its network instances after DNNs)
    dnns: list[str] = []
    #: PFCP Network Instances that belong to the slice, where they are not
    #: named after a DNN
    network_instances: list[str] = []
    #: one packet in this many is stamped for UPF transit latency and loss
    #: (a power of two; 1 = every packet)
    transit_sample_one_in: Annotated[int, Field(ge=1, le=65536)] = 1
    sla: SlaTargets = SlaTargets()

    @field_validator("transit_sample_one_in")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"must be a power of two (1, 2, 4, ... 65536), not {value}")
        return value


class CatalogFile(_Strict):
    slices: Annotated[list[SliceSpec], Field(min_length=1, max_length=MAX_SLICES - 1)]


class Slice(BaseModel):
    """A catalog slice with its id settled."""

    model_config = ConfigDict(frozen=True)
    id: int
    spec: SliceSpec

    @property
    def name(self) -> str:
        return self.spec.name


UNCLASSIFIED_NAME = "unclassified"


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True)
    source: str
    slices: tuple[Slice, ...]
    warnings: tuple[str, ...] = ()

    def by_id(self) -> dict[int, Slice]:
        return {s.id: s for s in self.slices}

    @property
    def slice_rows(self) -> int:
        """Slice ids 0 (unclassified) up to the highest in use: the rows of
        the slice-major maps that can ever be counted in."""
        return max(s.id for s in self.slices) + 1

    def name_of(self, slice_id: int) -> str:
        found = self.by_id().get(slice_id)
        return (
            found.name if found else (UNCLASSIFIED_NAME if slice_id == 0 else f"slice-{slice_id}")
        )

    def get(self, name: str) -> Slice | None:
        return next((s for s in self.slices if s.name == name), None)


def _describe_location(loc: tuple[Any, ...], raw: Any) -> str:
    """slices.1.snssai.sst -> slice 'urllc' (slices[1]), field snssai.sst"""
    if len(loc) >= 2 and loc[0] == "slices" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        if (
            isinstance(raw, dict)
            and isinstance(raw.get("slices"), list)
            and index < len(raw["slices"])
        ):
            entry = raw["slices"][index]
            if isinstance(entry, dict):
                name = entry.get("name")
        who = f"slice {name!r} (slices[{index}])" if name else f"slices[{index}]"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{who}, field {rest}" if rest else who
    return "field " + ".".join(str(p) for p in loc)


def _overlaps(slices: list[Slice]) -> tuple[list[str], list[str]]:
    """Rules two slices both claim: errors for identical or intersecting
    claims, warnings for UE subnets nested in another slice's (the longest
    prefix wins in the kernel). Sorted sweeps, n log n in the rules: a
    catalog of 255 slices with thousands of TEIDs each is checked at once."""
    errors = _teid_overlaps(slices)
    subnet_errors, warnings = _subnet_overlaps(slices)
    owners: dict[int, list[int]] = {}
    for i, s in enumerate(slices):
        for qfi in sorted(set(s.spec.qfis)):
            owners.setdefault(qfi, []).append(i)
    for qfi, claimed in sorted(owners.items()):
        for n, i in enumerate(claimed):
            for j in claimed[n + 1 :]:
                errors.append(
                    f"slices {slices[i].name!r} and {slices[j].name!r} both claim QFI {qfi}"
                )
    return subnet_errors + errors, warnings


def _teid_overlaps(slices: list[Slice]) -> list[str]:
    """Every pair of slices that claim a TEID in common, reported once with
    a span both claim. Sorted by first TEID, an interval meets an earlier
    one exactly when that one is still open (ends at or after its start):
    the sweep keeps, per slice, the furthest end of its open intervals, so
    each interval is compared with the slices open when it starts, not with
    every other interval."""
    intervals = sorted(
        (lo, hi, i)
        for i, s in enumerate(slices)
        for lo, hi in [(t, t) for t in s.spec.teids]
        + [(r.first, r.last) for r in s.spec.teid_ranges]
    )
    errors: list[str] = []
    reported: set[tuple[int, int]] = set()
    open_until: dict[int, int] = {}  # slice -> the furthest end of its open intervals
    for lo, hi, i in intervals:
        for closed in [j for j, end in open_until.items() if end < lo]:
            del open_until[closed]
        for j, end in open_until.items():
            pair = (min(i, j), max(i, j))
            if j == i or pair in reported:
                continue
            reported.add(pair)
            a, b = pair
            errors.append(
                f"slices {slices[a].name!r} and {slices[b].name!r} both claim TEIDs "
                f"0x{lo:x}-0x{min(hi, end):x}"
            )
        open_until[i] = max(hi, open_until.get(i, hi))
    return errors


def _subnet_overlaps(slices: list[Slice]) -> tuple[list[str], list[str]]:
    """Networks either nest or are apart: sorted by address then prefix,
    the networks containing one are the stack still open when it comes."""
    errors: list[str] = []
    warnings: list[str] = []
    for version in (4, 6):
        nets = sorted(
            (net.network_address, net.prefixlen, i, net)
            for i, s in enumerate(slices)
            for net in s.spec.ue_subnets
            if net.version == version
        )
        stack: list[tuple[int, Any]] = []
        for _, _, i, net in nets:
            while stack and not net.subnet_of(stack[-1][1]):
                stack.pop()
            for j, outer in stack:
                if j == i:
                    continue
                (a, net_a), (b, net_b) = sorted(((i, net), (j, outer)), key=lambda p: p[0])
                if net_a == net_b:
                    errors.append(
                        f"slices {slices[a].name!r} and {slices[b].name!r} both claim UE subnet {net_a}"
                    )
                else:
                    warnings.append(
                        f"UE subnets {net_a} ({slices[a].name}) and {net_b} ({slices[b].name}) "
                        "overlap; the longer prefix wins"
                    )
            stack.append((i, net))
    return errors, warnings


def parse_catalog(
    raw: Any, source: str, lines: Callable[[], Mapping[Location, int]] | None = None
) -> Catalog:
    """The catalog `raw` holds (read from `source`, whose YAML lines `lines`
    gives when a field is in error)."""
    try:
        parsed = CatalogFile.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(
            source,
            field_problems(exc, CatalogFile, lines, lambda loc: _describe_location(loc, raw)),
        ) from None

    problems: list[str] = []
    explicit = {s.id for s in parsed.slices if s.id is not None}
    next_free = 1
    settled: list[Slice] = []
    for spec in parsed.slices:
        slice_id = spec.id
        if slice_id is None:
            while next_free in explicit:
                next_free += 1
            slice_id = next_free
            next_free += 1
        settled.append(Slice(id=slice_id, spec=spec))

    seen_names: dict[str, int] = {}
    seen_ids: dict[int, str] = {}
    seen_snssai: dict[str, str] = {}
    for index, s in enumerate(settled):
        if s.name == UNCLASSIFIED_NAME:
            problems.append(f"slice {s.name!r} (slices[{index}]), field name: reserved for slice 0")
        if s.name in seen_names:
            problems.append(f"slice {s.name!r} (slices[{index}]), field name: defined twice")
        seen_names[s.name] = index
        if s.id >= MAX_SLICES:
            problems.append(f"slice {s.name!r} (slices[{index}]), field id: above {MAX_SLICES - 1}")
        if s.id in seen_ids:
            problems.append(
                f"slice {s.name!r} (slices[{index}]), field id: {s.id} already used by {seen_ids[s.id]!r}"
            )
        seen_ids[s.id] = s.name
        key = str(s.spec.snssai)
        if key in seen_snssai:
            problems.append(
                f"slice {s.name!r} (slices[{index}]), field snssai: {key} already used by {seen_snssai[key]!r}"
            )
        seen_snssai[key] = s.name
    overlap_errors, warnings = _overlaps(settled)
    problems.extend(overlap_errors)
    if problems:
        raise CatalogError(source, problems)
    return Catalog(source=source, slices=tuple(settled), warnings=tuple(warnings))


def load_catalog(path: Path | str | None = None) -> Catalog:
    path = Path(path) if path is not None else default_catalog_path()
    found = path
    return parse_catalog(read_yaml(path, CatalogError), str(path), lambda: yaml_lines_of(found))


def catalog_json_schema() -> dict[str, Any]:
    return CatalogFile.model_json_schema()
