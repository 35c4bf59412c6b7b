"""A uniform grid over every zone, for "who is within distance r of here".

Cells are CELL x CELL squares keyed by (zone, cell x, cell y) and only
occupied cells are stored, so a query touches at most a few cells whatever the
world's size. Each cell maps entity id to the entity, in insertion order, so
iteration is deterministic (callers still sort when order matters).

The grid holds whatever its owner puts in it: the resident world keeps the
visible entities there (everything but offline players), the area-of-interest
pass builds a second one of the entities as they were at the start of a tick.
"""

from __future__ import annotations

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
