"""The engine's families as spoolable lines: each sample line of the
exposition (sauron.export.prometheus.render_engine, the one owner of the
families' names and labels) with the snapshot's timestamp appended in
milliseconds, which is the exposition format's own optional timestamp. A
line so reads back as the series /metrics shows, its value and its time."""

from __future__ import annotations

from dataclasses import dataclass


class SampleLineError(ValueError):
    """A line that is not a sample of the exposition format."""


@dataclass(frozen=True)
class Sample:
    #: every label, `__name__` included, sorted by name
    labels: tuple[tuple[str, str], ...]
    value: float
    time_ms: int


def stamped(exposition: str, time_ms: int) -> list[str]:
    """The sample lines of an exposition, each with `time_ms`; HELP, TYPE
    and blank lines left out."""
    # "\n" alone ends a line: a label value may hold any other line break
    return [f"{text} {time_ms}" for text in exposition.split("\n") if text and text[0] != "#"]


_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


def parse(text: str) -> Sample:
    """One stamped line: `name{label="value",...} value time_ms`."""
    brace = text.find("{")
    space = text.find(" ")
    if space < 0:
        raise SampleLineError(f"no value: {text!r}")
    labels: dict[str, str] = {}
    if 0 <= brace < space:
        name = text[:brace]
        at = _labels(text, brace + 1, labels)
        rest = text[at:]
    else:
        name, rest = text[:space], text[space:]
    if not name:
        raise SampleLineError(f"no metric name: {text!r}")
    parts = rest.split()
    if len(parts) != 2:
        raise SampleLineError(f"not `value timestamp` after the labels: {text!r}")
    try:
        value, time_ms = float(parts[0]), int(parts[1])
    except ValueError:
        raise SampleLineError(f"value or timestamp unreadable: {text!r}") from None
    labels["__name__"] = name
    return Sample(tuple(sorted(labels.items())), value, time_ms)


def _labels(text: str, at: int, into: dict[str, str]) -> int:
    """Reads `key="value",...}` from `at`; returns where it ends."""
    while True:
        if text.startswith("}", at):
            return at + 1
        equals = text.find('="', at)
        if equals < 0:
            raise SampleLineError(f"label without a quoted value: {text!r}")
        key = text[at:equals]
        at = equals + 2
        value: list[str] = []
        while True:
            if at >= len(text):
                raise SampleLineError(f"label value not closed: {text!r}")
            char = text[at]
            if char == "\\" and at + 1 < len(text):
                value.append(_UNESCAPE.get(text[at + 1], "\\" + text[at + 1]))
                at += 2
            elif char == '"':
                at += 1
                break
            else:
                value.append(char)
                at += 1
        into[key] = "".join(value)
        if text.startswith(",", at):
            at += 1
