"""InfluxDB line protocol: one point per line, escaped as the protocol says
(measurement: commas and spaces; tag keys and values, field keys: commas,
equals signs and spaces; string field values: quotes and backslashes)."""

from __future__ import annotations

import math
from collections.abc import Mapping

FieldValue = int | float | bool | str

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


class PointError(ValueError):
    """A point the protocol cannot carry (no fields, an empty tag value)."""


def _field(value: FieldValue) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        # the protocol has no NaN or infinity: such a field is left out
        if not math.isfinite(value):
            return None
        text = repr(value)
        # a float field needs no decimal point: "3" is the float 3
        return text[:-2] if text.endswith(".0") else text
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue | None],
    time_ns: int,
) -> str:
    """One point. Tags are sorted by key (what the server would do anyway);
    fields whose value is None or not finite are left out."""
    head = measurement.translate(_MEASUREMENT)
    for key in sorted(tags):
        tag = tags[key]
        if not tag:
            raise PointError(f"tag {key!r} of {measurement!r} is empty")
        head += f",{key.translate(_KEY)}={tag.translate(_KEY)}"
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = _field(value)
        if text is not None:
            parts.append(f"{key.translate(_KEY)}={text}")
    if not parts:
        raise PointError(f"a point of {measurement!r} has no fields")
    return f"{head} {','.join(parts)} {time_ns}"
