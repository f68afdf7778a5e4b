"""The repository's scripts and generators (not a package) loaded as
modules, so a test can call what `make` runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_script(path: Path) -> ModuleType:
    """The Python file at `path` as a module named after it; its folder is
    on the path while it loads, as when it runs, so its siblings import."""
    sys.path.insert(0, str(path.parent))
    try:
        return _load(path)
    finally:
        sys.path.remove(str(path.parent))


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, f"{path} is not a Python file"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
