"""The agent configuration's reference, written from the pydantic models
themselves: every key with its type, default, limits and the `#:` comment
above its field. `sauron config reference` prints it; docs/configuration.md holds it
between markers, and a test keeps the two the same."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sauron.agent.config import AgentConfig

START = "<!-- config-reference:start (sauron config reference --readme docs/configuration.md) -->"
END = "<!-- config-reference:end -->"


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The `#:` comment lines right above each field of the class, joined."""
    comments: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        source = textwrap.dedent(inspect.getsource(klass))
        lines = source.splitlines()
        (cls,) = ast.parse(source).body
        assert isinstance(cls, ast.ClassDef)
        for node in cls.body:
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            above = []
            row = node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#:"):
                above.append(lines[row].strip()[2:].strip())
                row -= 1
            if above:
                comments[node.target.id] = " ".join(reversed(above))
    return comments


def type_name(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return type_name(args[0])
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(named + (["null"] if type(None) in args else []))
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "section"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def limits(info: FieldInfo) -> str:
    said = []
    for item in info.metadata:
        for kind, sign in ((Ge, "≥"), (Gt, ">"), (Le, "≤"), (Lt, "<")):
            if isinstance(item, kind):
                said.append(f"{sign} {getattr(item, kind.__name__.lower()):g}")
        if isinstance(item, MinLen):
            said.append(f"at least {item.min_length}")
        if isinstance(item, MaxLen):
            said.append(f"at most {item.max_length}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            said.append(f"matches `{pattern}`")
    return ", ".join(said)


def default_of(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, Path):
        return f"`{value}`"
    return f"`{json.dumps(value, default=str)}`"


def model_of(tp: Any) -> tuple[type[BaseModel] | None, bool]:
    """The section model a field holds, and whether it is a list of them."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return model_of(args[0])
    if origin in (Union, types.UnionType):
        for arg in args:
            found = model_of(arg)
            if found[0] is not None:
                return found
    if origin is list:
        inner, _ = model_of(args[0])
        return inner, True
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp, False
    return None, False


def rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default and limits, description) for every field, the
    fields of a section after the section's own row."""
    comments = field_comments(model)
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        section, many = model_of(info.annotation)
        about = comments.get(name) or info.description or ""
        if section is not None and about == "" and section.__doc__:
            about = " ".join(section.__doc__.split())
        default = default_of(info)
        bounds = limits(info)
        shown = ", ".join(part for part in (default, bounds) if part)
        yield f"`{key}`", type_name(info.annotation), shown, about
        if section is not None:
            yield from rows(section, f"{key}[]." if many else f"{key}.")


def reference() -> str:
    """The reference as a Markdown table."""
    lines = ["| key | type | default, limits | what |", "|---|---|---|---|"]
    for key, kind, default, about in rows(AgentConfig):
        cells = (c.replace("\n", " ") for c in (key, kind, default, about))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def with_reference(readme: str) -> str:
    """A document's text with the reference between its markers replaced."""
    head, start, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"no {START} ... {END} markers in it")
    return f"{head}{START}\n\n{reference()}\n{END}{tail}"
