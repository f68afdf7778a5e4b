"""The attach points as SAURON_POINT_TABLE in sauron_shared.h states them,
one AttachPoint a row. Whatever differs between points (what their frames
carry, whether frames enter or leave the UPF there, the direction they
count in, their rows in qfi_stats) is asked of these records, never of the
order of the ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sauron.abi import header
from sauron.abi.source import shared_header

Side = Literal["gtpu", "ip"]
Hook = Literal["ingress", "egress"]
Role = Literal["entry", "exit"]

GTPU: Side = "gtpu"
IP: Side = "ip"
INGRESS: Hook = "ingress"
EGRESS: Hook = "egress"
ENTRY: Role = "entry"
EXIT: Role = "exit"


@dataclass(frozen=True)
class AttachPoint:
    #: the index of its rows in slice_stats and events, of its direction
    #: mode and of its measurement programs
    id: int
    #: "n3_ingress", ...
    name: str
    #: what its frames carry: GTP-U (N3, N9) or the users' IP packets (N6)
    side: Side
    #: whether frames enter the UPF there or leave it
    hook: Hook
    #: the direction it counts frames in unless configured otherwise
    #: (sauron_shared.h's DIR_*)
    direction: int
    #: its row in qfi_stats, None when it sees no QFIs
    qfi_row: int | None

    @property
    def gtpu(self) -> bool:
        return self.side == GTPU

    @property
    def ingress(self) -> bool:
        return self.hook == INGRESS

    @property
    def egress(self) -> bool:
        return self.hook == EGRESS

    @property
    def sees_qfi(self) -> bool:
        return self.qfi_row is not None

    def role(self, direction: int) -> Role | None:
        """Whether the point is where that direction enters the UPF (ENTRY)
        or leaves it (EXIT); None when the direction does not pass it."""
        if direction != self.direction:
            return None
        return ENTRY if self.ingress else EXIT

    @property
    def option(self) -> str:
        """Its name on the command line: "n3-ingress", ..."""
        return self.name.replace("_", "-")


def read_points(path: Path) -> tuple[AttachPoint, ...]:
    """The points of a header's SAURON_POINT_TABLE, by id; ValueError when
    its ids or qfi rows leave a gap or repeat."""
    c = header.constants(path)
    sides: dict[int, Side] = {c["SAURON_GTPU_SIDE"]: GTPU, c["SAURON_IP_SIDE"]: IP}
    hooks: dict[int, Hook] = {c["SAURON_INGRESS"]: INGRESS, c["SAURON_EGRESS"]: EGRESS}
    directions = {c["SAURON_DIR_UPLINK"], c["SAURON_DIR_DOWNLINK"]}
    found = []
    for row in header.table_rows(path, "SAURON_POINT_TABLE"):
        if len(row) != 6:
            raise ValueError(f"SAURON_POINT_TABLE: {row} has not 6 columns")
        name, *cells = row
        ident, side, hook, direction, qfi_row = (header.value(path, cell) for cell in cells)
        if side not in sides or hook not in hooks or direction not in directions:
            raise ValueError(
                f"SAURON_POINT_TABLE: row {name}: {row} names no side, hook or direction"
            )
        found.append(
            AttachPoint(
                id=ident,
                name=name.lower(),
                side=sides[side],
                hook=hooks[hook],
                direction=direction,
                qfi_row=None if qfi_row == c["SAURON_NO_QFI_ROW"] else qfi_row,
            )
        )
    found.sort(key=lambda p: p.id)
    if [p.id for p in found] != list(range(len(found))):
        raise ValueError(f"SAURON_POINT_TABLE: ids {[p.id for p in found]} are not 0..n-1")
    rows = sorted(p.qfi_row for p in found if p.qfi_row is not None)
    if rows != list(range(len(rows))):
        raise ValueError(f"SAURON_POINT_TABLE: qfi rows {rows} are not 0..n-1")
    return tuple(found)


#: every attach point, by id
POINTS: tuple[AttachPoint, ...] = read_points(shared_header())
#: the points whose frames are GTP-U
GTPU_POINTS = tuple(p for p in POINTS if p.gtpu)
#: the points with rows in qfi_stats
QFI_POINTS = tuple(p for p in POINTS if p.sees_qfi)
_BY_NAME = {p.name: p for p in POINTS}


def point(ident: int) -> AttachPoint:
    """The point with that id."""
    if not 0 <= ident < len(POINTS):
        raise LookupError(f"no attach point {ident}")
    return POINTS[ident]


def named(name: str) -> AttachPoint:
    """The point by its name ("n3_ingress") or option ("n3-ingress")."""
    try:
        return _BY_NAME[name.replace("-", "_")]
    except KeyError:
        raise LookupError(f"no attach point named {name!r}") from None


def entries(direction: int) -> tuple[AttachPoint, ...]:
    """The points where that direction enters the UPF."""
    return tuple(p for p in POINTS if p.role(direction) == ENTRY)


def exits(direction: int) -> tuple[AttachPoint, ...]:
    """The points where that direction leaves the UPF."""
    return tuple(p for p in POINTS if p.role(direction) == EXIT)


def constants() -> dict[str, int]:
    """The names the table gives C: SAURON_POINT_<name> for each id, and
    the counts SAURON_POINTS and SAURON_QFI_POINTS."""
    values = {f"SAURON_POINT_{p.name.upper()}": p.id for p in POINTS}
    values["SAURON_POINTS"] = len(POINTS)
    values["SAURON_QFI_POINTS"] = len(QFI_POINTS)
    return values


def entry_point(direction: int) -> AttachPoint:
    """The point where that direction enters the UPF, when the table has
    one; with several (an N9 point beside N3), read entries()."""
    found = entries(direction)
    if len(found) != 1:
        raise LookupError(f"direction {direction} enters the UPF at {len(found)} points")
    return found[0]


def exit_point(direction: int) -> AttachPoint:
    """The point where that direction leaves the UPF, when the table has
    one; with several, read exits()."""
    found = exits(direction)
    if len(found) != 1:
        raise LookupError(f"direction {direction} leaves the UPF at {len(found)} points")
    return found[0]
