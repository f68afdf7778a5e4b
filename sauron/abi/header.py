"""Reading the facts a C header of sauron/bpf/c/include/ states: its
SAURON_* #defines and enumerators, and the rows of a table written as an
X-macro (``#define NAME(ROW) ROW(...) ROW(...)``). The headers stay the only
owners of these values; the modules of sauron.abi build their views from
what is read here."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_DEFINE = re.compile(r"^\s*#define\s+(SAURON_\w+)\s+(0x[0-9a-fA-F]+|\d+)\b", re.M)
_ENUMERATOR = re.compile(r"^\s*(SAURON_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*,", re.M)
_CONTINUED = re.compile(r"\\\n")


@cache
def constants(header: Path) -> dict[str, int]:
    """Every SAURON_* #define and enumerator with a literal value."""
    text = header.read_text()
    values: dict[str, int] = {}
    for pattern in (_DEFINE, _ENUMERATOR):
        for name, raw in pattern.findall(text):
            values[name] = int(raw, 0)
    return values


@cache
def table_rows(header: Path, table: str) -> tuple[tuple[str, ...], ...]:
    """The rows of an X-macro table, each as its arguments' text, in the
    order they are written."""
    text = _CONTINUED.sub(" ", header.read_text())
    match = re.search(rf"^\s*#define\s+{re.escape(table)}\((\w+)\)(.*)$", text, re.M)
    if not match:
        raise LookupError(f"{header.name}: no table {table}")
    row, body = match.groups()
    rows = re.findall(rf"\b{re.escape(row)}\(([^()]*)\)", body)
    return tuple(tuple(arg.strip() for arg in args.split(",")) for args in rows)


def value(header: Path, token: str) -> int:
    """A table cell's value: a literal or one of the header's constants."""
    if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", token):
        return int(token, 0)
    try:
        return constants(header)[token]
    except KeyError:
        raise LookupError(f"{header.name}: {token} is neither a number nor a constant") from None
