"""Shorthands for the rules tests: commands, and the parts of a tick's output.

Everything here reads the engine only through Session and TickResult, so the
tests run unchanged against either engine.
"""

from __future__ import annotations

from typing import Any

from schema._generated.layout import ENTITY_SIZE
from vocabulary.records import entity_ids, unpack_entity
from vocabulary.types import TickResult

AOI_TYPES = ("enter", "update", "leave")


def cmd(player: int, seq: int, op: str, **fields: Any) -> dict[str, Any]:
    return dict(player=player, seq=seq, op=op, **fields)


def rejections(effects: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    return [(e["player"], e["seq"], e["reason"]) for e in effects if e["type"] == "rejected"]


def reason(effects: list[dict[str, Any]]) -> str | None:
    """The reason of the tick's only rejection, or None when nothing was rejected."""
    found = rejections(effects)
    assert len(found) <= 1, found
    return found[0][2] if found else None


def sightings(effects: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """The area-of-interest effects as (type, observer, entity), in order."""
    return [(e["type"], e["observer"], e["entity"]) for e in effects if e["type"] in AOI_TYPES]


def non_aoi(effects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The effects other than area-of-interest ones, without their tick."""
    return [{k: v for k, v in e.items() if k != "tick"} for e in effects if e["type"] not in AOI_TYPES]


def changed(result: TickResult) -> dict[int, dict[str, Any]]:
    """TickResult.changed decoded, by id (checking it is in ascending id)."""
    ids = entity_ids(result.changed)
    assert ids == sorted(set(ids)), ids
    return {ids[i]: unpack_entity(result.changed[i * ENTITY_SIZE:(i + 1) * ENTITY_SIZE])
            for i in range(len(ids))}


def removed(result: TickResult) -> list[int]:
    return [int.from_bytes(result.removed[i:i + 8], "little") for i in range(0, len(result.removed), 8)]
