"""The area-of-interest rule as docs/rules.md states it, written the slow, obvious way.

An oracle for the tests, independent of both engines: each area is found by
sorting every candidate of the whole world, and a tick's sightings by
comparing the two decoded worlds around it.
"""

from __future__ import annotations

from typing import Any

from vocabulary.records import Kind

SIGHT = 10
OTHERS = 31

Entities = dict[int, dict[str, Any]]


def visible(e: dict[str, Any]) -> bool:
    return e["kind"] != Kind.player or e["online"] == 1


def area(entities: Entities, observer: int, seen: list[dict[str, Any]] | None = None) -> list[int]:
    """The observer and its 31 nearest visible entities within SIGHT in its zone, by (distance, id).
    `seen`: the visible entities, when the caller has them at hand."""
    p = entities[observer]
    if seen is None:
        seen = [e for e in entities.values() if visible(e)]
    candidates = sorted((max(abs(e["x"] - p["x"]), abs(e["y"] - p["y"])), e["id"]) for e in seen
                        if e["id"] != observer and e["zone"] == p["zone"]
                        and max(abs(e["x"] - p["x"]), abs(e["y"] - p["y"])) <= SIGHT)
    return [observer] + [id for _, id in candidates[:OTHERS]]


def online_players(entities: Entities) -> list[int]:
    return [id for id, e in entities.items() if e["kind"] == Kind.player and e["online"] == 1]


def _changed(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "last_seq"} != {k: v for k, v in b.items() if k != "last_seq"}


def sightings(before: Entities, after: Entities, flying_before: Entities | None = None,
              flying_after: Entities | None = None) -> list[tuple[str, int, int]]:
    """The tick's (type, observer, entity) area-of-interest effects, in the order the rules give them.
    `flying_*`: the travellers in flight at either end, by id: each an observer whose area is itself."""
    flying_before, flying_after = flying_before or {}, flying_after or {}
    records_before, records_after = {**before, **flying_before}, {**after, **flying_after}
    out: list[tuple[int, int, str]] = []
    seen_before = [e for e in before.values() if visible(e)]
    seen_after = [e for e in after.values() if visible(e)]
    for p in online_players(after) + list(flying_after):
        new = {p} if p in flying_after else set(area(after, p, seen_after))
        was = before.get(p)
        if p in flying_before:
            old = {p}
        elif was is not None and was["kind"] == Kind.player and was["online"]:
            old = set(area(before, p, seen_before))
        else:
            old = set()
        out += [(p, e, "enter") for e in new - old]
        out += [(p, e, "leave") for e in old - new]
        out += [(p, e, "update") for e in new & old if _changed(records_before[e], records_after[e])]
    return [(kind, p, e) for p, e, kind in sorted(out)]
