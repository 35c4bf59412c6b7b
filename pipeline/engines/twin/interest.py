"""Every online player's area of interest, kept from one tick to the next.

The area-of-interest pass (rules/aoi.py) needs each observer's view at the
start of the tick; rebuilding them all every tick would cost every observer a
search, moved or not. So the views are kept: `members[p]` is player p's area
of interest as the world stands between ticks (p first, then the others by
distance and id), `radius[p]` how far it reaches (docs/rules.md, "Area of
interest"), and `watchers[e]` the observers whose area holds entity e, so a
changed entity finds the observers to update without a search.
"""

from __future__ import annotations


class Interest:
    def __init__(self) -> None:
        self.members: dict[int, tuple[int, ...]] = {}
        self.radius: dict[int, int] = {}
        self.watchers: dict[int, set[int]] = {}
        # False once a tick skipped the pass: the kept areas no longer match the world.
        self.valid = True

    def set(self, observer: int, members: tuple[int, ...], radius: int) -> None:
        old = self.members.get(observer, ())
        if old != members:
            kept = set(members)
            for e in old:
                if e not in kept:
                    self._unwatch(e, observer)
            for e in kept.difference(old):
                self.watchers.setdefault(e, set()).add(observer)
        self.members[observer] = members
        self.radius[observer] = radius

    def drop(self, observer: int) -> None:
        for e in self.members.pop(observer, ()):
            self._unwatch(e, observer)
        self.radius.pop(observer, None)

    def clear(self) -> None:
        self.members.clear()
        self.radius.clear()
        self.watchers.clear()
        self.valid = True

    def _unwatch(self, e: int, observer: int) -> None:
        watching = self.watchers[e]
        watching.discard(observer)
        if not watching:
            del self.watchers[e]
