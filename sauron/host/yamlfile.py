"""Reading the YAML files operators edit (catalog, agent configuration):
every problem is reported with the file it is in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class FileProblems(ValueError):
    """A file that cannot be used, with every problem found in it."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


#: the largest file read: far above any catalog or configuration (255
#: slices with thousands of TEIDs each), far below what would take the
#: parser minutes and gigabytes
MAX_YAML_BYTES = 8 * 1024 * 1024


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """safe_load's loader, refusing a key given twice in one mapping (YAML
    would keep the last silently: a second `slices:` replacing the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
                seen.setdefault(key, line)
            except TypeError:  # an unhashable key: the constructor says so below
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice (lines {first} and {line})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def read_yaml(path: Path, error: type[FileProblems]) -> Any:
    """The file's YAML: at most MAX_YAML_BYTES, UTF-8, no key twice in a
    mapping; any problem names the file (and the line where YAML knows it)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise error(path, [f"cannot read: {exc.strerror}"]) from None
    if len(data) > MAX_YAML_BYTES:
        raise error(path, [f"larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB: not read"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(path, [f"not UTF-8 text: byte {exc.start} (line {line})"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        raise error(path, [f"not valid YAML: {exc}"]) from None
