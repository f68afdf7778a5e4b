"""Validation errors in words a person can act on: the YAML line, the field
as the file spells it, what is wrong without the validator's internals,
and for an unknown key the nearest one the file may hold.

pydantic names a failed field by its path, with the names of its own
validators in it for unions (`ue_subnets.0.lax-or-strict[...]`); those
are left out, the messages of one field's alternatives joined ("not a
valid IPv4 network or not a valid IPv6 network")."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from sauron.host.nearest_word import nearest

Location = tuple[str | int, ...]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def yaml_lines(text: str) -> dict[Location, int]:
    """Each key's and list item's line in a YAML text, by path."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return {}
    lines: dict[Location, int] = {}

    def walk(node: yaml.Node, path: Location) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                here = (*path, index)
                lines[here] = item.start_mark.line + 1
                walk(item, here)

    if root is not None:
        walk(root, ())
    return lines


def yaml_lines_of(path: Path) -> dict[Location, int]:
    """yaml_lines of a file ({} when it cannot be read again)."""
    try:
        return yaml_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _keys_at(model: type[BaseModel] | None, path: Location) -> list[str]:
    """The keys the mapping at `path` may hold, when a model says."""
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _message(error: Any, path: Location, model: type[BaseModel] | None) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        known = _keys_at(model, path[:-1])
        near = nearest(key, known)
        if near:
            return f"unknown key {key!r}: did you mean {near!r}?"
        return f"unknown key {key!r}" + (f" (keys here: {', '.join(known)})" if known else "")
    if kind == "missing":
        return "missing (it is required)"
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    if text.startswith("Input ") and _scalar(error.get("input")):
        # the value is named once, before all the field's messages
        return text.removeprefix("Input ")
    return text


def _alternatives(messages: list[str]) -> str:
    """One field's messages as one: "is not a valid IPv4 network or IPv6
    network" (the words they begin with said once)."""
    if len(messages) == 1:
        return messages[0]
    words = [m.split(" ") for m in messages]
    common = 0
    while all(len(w) > common + 1 and w[common] == words[0][common] for w in words):
        common += 1
    head = " ".join(words[0][:common])
    rest = " or ".join(" ".join(w[common:]) for w in words)
    return f"{head} {rest}" if head else rest


def field_problems(
    exc: ValidationError,
    model: type[BaseModel] | None = None,
    lines: Callable[[], Mapping[Location, int]] | None = None,
    where: Callable[[Location], str] | None = None,
) -> list[str]:
    """One line per field in error: "line N: field a.b: what is wrong".
    `model` gives the keys an unknown one is held against; `lines` the
    YAML's lines by path (asked only here, once); `where` names a place
    (default "field a.b")."""
    by_place: dict[Location, list[str]] = {}
    given: dict[Location, str] = {}
    for error in exc.errors():
        path = tuple(p for p in error["loc"] if isinstance(p, int) or _NAME.match(str(p)))
        message = _message(error, path, model)
        if str(error["msg"]).startswith("Input ") and _scalar(error.get("input")):
            given[path] = f"{error['input']!r} "
        said = by_place.setdefault(path, [])
        if message not in said:
            said.append(message)
    found = lines() if lines is not None and by_place else {}
    problems: list[tuple[int, str]] = []
    for path, messages in by_place.items():
        place = where(path) if where else f"field {'.'.join(map(str, path)) or '(top level)'}"
        line = next((found[path[:n]] for n in range(len(path), 0, -1) if path[:n] in found), None)
        prefix = f"line {line}: " if line is not None else ""
        text = given.get(path, "") + _alternatives(messages)
        problems.append((line or 0, f"{prefix}{place}: {text}"))
    return [text for _, text in sorted(problems, key=lambda p: p[0])]
