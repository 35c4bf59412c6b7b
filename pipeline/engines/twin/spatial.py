"""Where entities are: a coarse grid for "who is within distance r of here",
and exact positions for "who is nearest" in a crowd.

Grid cells are CELL x CELL squares keyed by (zone, cell x, cell y) and only
occupied cells are stored, so a query touches at most a few cells whatever the
world's size. Each cell maps entity id to the entity, in insertion order, so
iteration is deterministic (callers still sort when order matters).

Spots map each occupied position (zone, x, y) to the ids there in ascending
order: in a crowd the nearest entities are found ring by ring of positions,
taking from each position only as many of its lowest ids as are still needed
(rules/aoi.py), however many stand there.

The resident world keeps its visible entities (everything but offline
players) in both.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Generic, Iterator, Protocol, TypeVar

CELL_SHIFT = 4
CELL = 1 << CELL_SHIFT  # 16: a distance-10 query spans at most 3 x 3 cells


class Placed(Protocol):
    id: int
    zone: int
    x: int
    y: int


T = TypeVar("T", bound=Placed)


class Grid(Generic[T]):
    def __init__(self) -> None:
        self._cells: dict[tuple[int, int, int], dict[int, T]] = {}

    def add(self, e: T) -> None:
        self._cells.setdefault((e.zone, e.x >> CELL_SHIFT, e.y >> CELL_SHIFT), {})[e.id] = e

    def remove(self, e: T) -> None:
        """Remove `e` from the cell of its current position (call before moving it)."""
        key = (e.zone, e.x >> CELL_SHIFT, e.y >> CELL_SHIFT)
        cell = self._cells[key]
        del cell[e.id]
        if not cell:
            del self._cells[key]

    def cell(self, zone: int, cx: int, cy: int) -> dict[int, T] | None:
        return self._cells.get((zone, cx, cy))

    def population(self, zone: int, x: int, y: int, radius: int) -> int:
        """How many entities the cells that a query around (x, y) would scan hold."""
        cells = self._cells
        return sum(len(cells.get((zone, cx, cy), ()))
                   for cx in range(max(0, x - radius) >> CELL_SHIFT, ((x + radius) >> CELL_SHIFT) + 1)
                   for cy in range(max(0, y - radius) >> CELL_SHIFT, ((y + radius) >> CELL_SHIFT) + 1))

    def near(self, zone: int, x: int, y: int, radius: int) -> Iterator[T]:
        """Everything in `zone` at Chebyshev distance <= radius of (x, y)."""
        cells = self._cells
        for cx in range(max(0, x - radius) >> CELL_SHIFT, ((x + radius) >> CELL_SHIFT) + 1):
            for cy in range(max(0, y - radius) >> CELL_SHIFT, ((y + radius) >> CELL_SHIFT) + 1):
                cell = cells.get((zone, cx, cy))
                if cell is None:
                    continue
                for e in cell.values():
                    if abs(e.x - x) <= radius and abs(e.y - y) <= radius:
                        yield e


class Spots:
    """The ids at each occupied position, ascending."""

    def __init__(self) -> None:
        self._at: dict[tuple[int, int, int], list[int]] = {}

    def add(self, e: Placed) -> None:
        insort(self._at.setdefault((e.zone, e.x, e.y), []), e.id)

    def remove(self, e: Placed) -> None:
        """Remove `e` from its current position (call before moving it)."""
        key = (e.zone, e.x, e.y)
        ids = self._at[key]
        del ids[bisect_left(ids, e.id)]
        if not ids:
            del self._at[key]

    def at(self, zone: int, x: int, y: int) -> list[int] | None:
        return self._at.get((zone, x, y))


def ring(x: int, y: int, d: int, width: int, height: int) -> Iterator[tuple[int, int]]:
    """The positions at Chebyshev distance exactly `d` of (x, y) inside a width x height zone."""
    if d == 0:
        yield x, y
        return
    left, right = max(x - d, 0), min(x + d, width - 1)
    for row in (y - d, y + d):
        if 0 <= row < height:
            for column in range(left, right + 1):
                yield column, row
    top, bottom = max(y - d + 1, 0), min(y + d - 1, height - 1)
    for column in (x - d, x + d):
        if 0 <= column < width:
            for row in range(top, bottom + 1):
                yield column, row
