"""What the demo shows while it runs: on a terminal one table updated in
place (rich), with the phase and the clock above it and the story's lines
(phases, violations opened and closed) printed over it as they happen;
piped or logged, plain lines: one table per interval, the story between."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sauron.commands.views import clock, fit_cell, pick_columns
from sauron.service import schemas

#: the demo's columns: narrower than `sauron kpis`, with the energy figures
DEMO_COLUMNS = pick_columns(
    "SLA",
    "DL Mbit/s",
    "UL Mbit/s",
    "transit p99 UL/DL",
    "loss UL/DL",
    "UPF drops",
    "W",
    "J",
    "J/GB",
)
#: the SLA states the live table colours
STATUS_STYLE = {"met": "green", "at_risk": "yellow", "violated": "bold red"}


@dataclass(frozen=True)
class Frame:
    """One interval as the demo shows it."""

    doc: schemas.SnapshotDoc
    phase: str
    elapsed_s: float
    duration_s: float

    def heading(self) -> str:
        return (
            f"{clock(self.doc.time)}  t={self.elapsed_s:4.0f} s of {self.duration_s:.0f}"
            f"  phase: {self.phase}"
        )

    def rows(self) -> list[tuple[str, list[str]]]:
        return [
            (name, [cell(k) for _, _, cell in DEMO_COLUMNS]) for name, k in self.doc.slices.items()
        ]


class DemoView(Protocol):
    def __enter__(self) -> DemoView: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def say(self, line: str) -> None:
        """A line of the story, kept above the table."""

    def show(self, frame: Frame) -> None:
        """The newest interval."""


def plain_table(frame: Frame) -> str:
    width = max([14, *(len(name) + 2 for name, _ in frame.rows())])
    head = f"{'slice':<{width}}" + "".join(fit_cell(h, w) for h, w, _ in DEMO_COLUMNS)
    body = [
        f"{name:<{width}}"
        + "".join(fit_cell(c, w) for c, (_, w, _) in zip(cells, DEMO_COLUMNS, strict=True))
        for name, cells in frame.rows()
    ]
    return "\n".join([frame.heading(), head, *body])


class PlainView:
    """Lines only, for a pipe or a log (and the tests that read them)."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.out = out
        self._lock = threading.Lock()

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def say(self, line: str) -> None:
        with self._lock:
            self.out(line)

    def show(self, frame: Frame) -> None:
        with self._lock:
            self.out(plain_table(frame) + "\n")


class LiveView:
    """The table in place on a terminal; the story scrolls above it."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live = Live(
            Text("waiting for the first interval ..."),
            console=self.console,
            auto_refresh=False,
            transient=False,
        )

    def __enter__(self) -> LiveView:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def say(self, line: str) -> None:
        self.live.console.print(line, highlight=False, markup=False)

    def show(self, frame: Frame) -> None:
        self.live.update(
            Group(Text(frame.heading(), style="bold"), self.table(frame)), refresh=True
        )

    @staticmethod
    def table(frame: Frame) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("slice")
        for heading, width, _ in DEMO_COLUMNS:
            table.add_column(heading, justify="left" if width < 0 else "right")
        for name, cells in frame.rows():
            status = frame.doc.slices[name].sla
            styled: list[Any] = [Text(cells[0], style=STATUS_STYLE.get(status, "")), *cells[1:]]
            table.add_row(name, *styled)
        return table


def terminal_view(stream: TextIO | None = None) -> DemoView:
    """The live table on a terminal, plain lines anywhere else."""
    stream = stream or sys.stdout
    if stream.isatty():
        return LiveView(Console(file=stream))
    return PlainView(lambda line: print(line, file=stream, flush=True))
