"""The configuration reference in docs/configuration.md is written from the models:
it is what `sauron config reference` prints now, it names every key the
agent accepts with a description, and what it says of a key (type, default,
limits, comment) comes from that key's field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from sauron.agent.config import AgentConfig
from sauron.commands.config_reference import END, START, model_of, reference, rows, with_reference

REPO = Path(__file__).resolve().parents[2]


def every_key(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        keys.append(f"{prefix}{name}")
        section, many = model_of(info.annotation)
        if section is not None:
            keys += every_key(section, f"{prefix}{name}{'[]' if many else ''}.")
    return keys


def test_the_manual_holds_the_reference_as_written_now() -> None:
    readme = (REPO / "docs" / "configuration.md").read_text()
    assert readme.count(START) == 1 and readme.count(END) == 1
    assert with_reference(readme) == readme, "run `make reference` and commit docs/configuration.md"


def test_every_key_is_in_it_with_a_description() -> None:
    table = {key.strip("`"): about for key, _, _, about in rows(AgentConfig)}
    assert list(table) == every_key(AgentConfig)
    assert "interfaces[].link" in table and "control_plane.pfcp[].netns" in table
    assert [key for key, about in table.items() if not about] == []


class Part(BaseModel):
    #: where it goes
    path: Path = Path("/var/x")


class Example(BaseModel):
    #: how many of them,
    #: on two lines
    count: Annotated[int, Field(ge=1, le=9)] = 3
    mode: Literal["fast", "slow"] = Field("fast", description="said by the field")
    name: Annotated[str, Field(min_length=2, pattern=r"^[a-z]+$")]
    parts: list[Part] = []
    extra: float | None = None


def test_a_row_says_what_the_field_says() -> None:
    got = {key.strip("`"): (kind, default, about) for key, kind, default, about in rows(Example)}
    assert got == {
        "count": ("integer", "`3`, ≥ 1, ≤ 9", "how many of them, on two lines"),
        "mode": ('`"fast"` \\| `"slow"`', '`"fast"`', "said by the field"),
        "name": ("string", "required, at least 2, matches `^[a-z]+$`", ""),
        "parts": ("list of section", "`[]`", ""),
        "parts[].path": ("path", "`/var/x`", "where it goes"),
        "extra": ("number \\| null", "`null`", ""),
    }


def test_the_command_prints_it_and_writes_it_between_the_markers(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "sauron", "config", "reference"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == reference()
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\n{START}\nold text\n{END}\n\nAfter.\n")
    done = subprocess.run(
        [sys.executable, "-m", "sauron", "config", "reference", "--readme", str(doc)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert doc.read_text() == f"# Title\n\n{START}\n\n{reference()}\n{END}\n\nAfter.\n"
    bare = tmp_path / "bare.md"
    bare.write_text("# No markers\n")
    done = subprocess.run(
        [sys.executable, "-m", "sauron", "config", "reference", "--readme", str(bare)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "markers" in done.stderr
    assert bare.read_text() == "# No markers\n"
