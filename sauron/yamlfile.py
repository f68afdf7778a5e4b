"""Reading the YAML files operators edit (catalog, agent configuration):
every problem is reported with the file it is in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class FileProblems(ValueError):
    """A file that cannot be used, with every problem found in it."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


def read_yaml(path: Path, error: type[FileProblems]) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(path, [f"cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise error(path, [f"not valid YAML: {exc}"]) from None


def field_problems(exc: ValidationError) -> list[str]:
    """One line per validation error, naming the field ("field a.b: msg")."""
    return [
        f"field {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
        for e in exc.errors()
    ]
