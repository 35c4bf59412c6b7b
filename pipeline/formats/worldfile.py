"""World files (FORMATS.md "World file"): load strictly, dump deterministically, hash.

Loading checks every rule of docs/rules.md "Value ranges" and names the
file, line and field of the first problem. The fast path is json.loads plus
one pass over plain dicts; line numbers are worked out only on error
(pipeline/formats/jsoninput.py).
"""

from __future__ import annotations

import json
import os
from json.encoder import encode_basestring as _quote  # what json.dumps(s, ensure_ascii=False) uses
from typing import Any

from schema._generated.layout import ENTITY_FIELDS, ENTITY_SIZE, ItemType, Kind
from vocabulary.errors import InputError
from vocabulary.records import ENTITY, NAME_MAX, ZONE, pack_zone
from vocabulary.types import WorldData

from .jsoninput import (
    U32_MAX,
    Bad,
    Path,
    Variants,
    check_int,
    check_keys,
    check_list,
    check_name,
    check_object,
    describe,
    find_duplicate_key,
    key_count_bound,
    line_of,
    loads,
    locate,
    path_str,
    quoted,
)

FORMAT = "fluxworld.world/1"
U62 = 2**62
ID_LIMIT = 2**63 - 1     # next_id's largest: PostgreSQL's largest bigint (gold drops stop there)
TICK_REACH = U62 + 10    # a tick of at most 2^62 plus the rules' longest wait (respawn, 10 ticks)
STAT_MAX = 1_000_000  # max_hp, attack, defense, potions

TOP_FIELDS = ("format", "seed", "tick", "next_id", "zones", "entities")
ZONE_FIELDS = ("id", "width", "height", "spawn_x", "spawn_y")
_LIVING = ("id", "kind", "zone", "x", "y", "hp", "max_hp", "attack", "defense", "gold", "potions",
           "next_action_tick", "respawn_tick")
PLAYER_FIELDS = _LIVING + ("online", "name", "last_seq")
NPC_FIELDS = _LIVING + ("name", "home_x", "home_y")
ITEM_FIELDS = ("id", "kind", "zone", "x", "y", "item_type", "amount")
FIELDS = {"player": PLAYER_FIELDS, "npc": NPC_FIELDS, "item": ITEM_FIELDS}

# Integer fields and their ranges that do not depend on other fields, checked
# in file order before any cross-check, so the cross-checks can trust them.
_RANGES = {
    "id": (1, ID_LIMIT - 1), "zone": (0, U32_MAX), "x": (0, 65534), "y": (0, 65534),
    "hp": (0, STAT_MAX), "max_hp": (1, STAT_MAX), "attack": (0, STAT_MAX),
    "defense": (0, STAT_MAX), "gold": (0, U62), "potions": (0, STAT_MAX),
    "next_action_tick": (0, TICK_REACH), "respawn_tick": (0, TICK_REACH), "last_seq": (0, U62),
    "home_x": (0, 65534), "home_y": (0, 65534), "amount": (0, U62),
}
_ENTITIES = Variants("kind", FIELDS, _RANGES, noun="an entity", allowed='"player", "npc", "item"',
                     variant_noun=lambda kind: f"a{'n' if kind == 'item' else ''} {kind}")
_ITEM_TYPES = {"gold": ItemType.gold, "potion": ItemType.potion}


# ---------------------------------------------------------------- loading

def load_world(path: str | os.PathLike[str]) -> WorldData:
    """Read and validate a world file; raises InputError naming file, line and field."""
    file = os.fspath(path)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"cannot read the world file: {e.strerror}", file=file) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start})", file=file,
                         line=data.count(b"\n", 0, e.start) + 1) from None
    return parse_world(text, file=file)


def parse_world(text: str, *, file: str | None = None) -> WorldData:
    """The world in `text` (a world file's contents); `file` only names it in errors."""
    try:
        doc = loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", file=file, line=e.lineno) from None
    try:
        world, key_count = _check_world(doc)
        # json.loads keeps the last of two equal keys, so a repeated key would pass unseen;
        # the slow re-parse that finds it runs only when a cheap count says one may exist.
        if key_count_bound(text) != key_count:
            dup = find_duplicate_key(text)
            if dup:
                raise Bad(dup, f"field {quoted(str(dup[-1]))} appears more than once")
    except Bad as bad:
        raise InputError(bad.message, file=file, line=line_of(text, locate(text, bad.path)),
                         field=path_str(bad.path) or None) from None
    return world


def _check_world(doc: Any) -> tuple[WorldData, int]:
    """Validate a parsed world file; returns the world and how many object keys it has."""
    top = check_object((), doc, "a world file")
    fmt = top.get("format")
    if fmt != FORMAT:
        what = "is missing" if "format" not in top else f"is {describe(fmt)}"
        raise Bad(("format",), f'"format" {what}; a world file starts with "format": "{FORMAT}"')
    check_keys((), top, TOP_FIELDS, "a world file")
    seed = check_int(("seed",), top["seed"], 0, U62)
    tick = check_int(("tick",), top["tick"], 0, U62)
    next_id = check_int(("next_id",), top["next_id"], 0, ID_LIMIT)
    zones = _check_zones(check_list(("zones",), top["zones"]))
    entities = check_list(("entities",), top["entities"])

    records: list[tuple[int, bytes]] = []
    first_index: dict[int, int] = {}
    total_gold = 0
    for i, e in enumerate(entities):
        at: Path = ("entities", i)
        kind = _ENTITIES.check(at, e)

        eid = e["id"]
        if eid >= next_id:
            raise Bad(at + ("id",), f"id {eid} is not below next_id {next_id}; entity ids are 1..next_id-1")
        if eid in first_index:
            raise Bad(at + ("id",), f"id {eid} is used twice (also by entities[{first_index[eid]}])")
        first_index[eid] = i
        zone = zones.get(e["zone"])
        if zone is None:
            known = ", ".join(map(str, sorted(zones))) or "none"
            raise Bad(at + ("zone",), f"zone {e['zone']} does not exist (zones: {known})")
        if e["x"] >= zone["width"] or e["y"] >= zone["height"]:
            _check_inside(at, e, zone, "x", "y")

        if kind == "item":
            item_type = _ITEM_TYPES.get(e["item_type"]) if type(e["item_type"]) is str else None
            if item_type is None:
                raise Bad(at + ("item_type",), f'item_type must be "gold" or "potion", got {describe(e["item_type"])}')
            amount = e["amount"]
            if item_type == ItemType.potion and amount != 1:
                raise Bad(at + ("amount",), f"a potion's amount is 1, got {amount}")
            if item_type == ItemType.gold and amount < 1:
                raise Bad(at + ("amount",), f"a gold item's amount is 1..2^62, got {amount}")
            gold_field, gold = "amount", (amount if item_type == ItemType.gold else 0)
            record = ENTITY.pack(eid, 0, amount, 0, 0, 0, e["zone"], 0, 0, 0, 0, 0, e["x"], e["y"],
                                 0, 0, Kind.item, item_type, 0, 0, b"")
        else:
            record = _living_record(at, kind, e, zone)
            gold_field, gold = "gold", e["gold"]
        total_gold += gold
        if total_gold > U62:
            raise Bad(at + (gold_field,), f"the world's total gold reaches {total_gold}, above 2^62")
        records.append((eid, record))

    records.sort()
    world = WorldData(seed=seed, tick=tick, next_id=next_id,
                      zones=b"".join(pack_zone(**zones[z]) for z in sorted(zones)),
                      entities=b"".join(r for _, r in records))
    key_count = len(top) + len(zones) * len(ZONE_FIELDS) + sum(map(len, entities))
    return world, key_count


def _check_zones(zones: list[Any]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for i, z in enumerate(zones):
        at: Path = ("zones", i)
        check_keys(at, check_object(at, z, "a zone"), ZONE_FIELDS, "a zone")
        zid = check_int(at + ("id",), z["id"], 0, U32_MAX)
        check_int(at + ("width",), z["width"], 1, 65535)
        check_int(at + ("height",), z["height"], 1, 65535)
        check_int(at + ("spawn_x",), z["spawn_x"], 0, 65534)
        check_int(at + ("spawn_y",), z["spawn_y"], 0, 65534)
        if zid in out:
            raise Bad(at + ("id",), f"zone id {zid} is used twice")
        _check_inside(at, z, z, "spawn_x", "spawn_y", own=True)
        out[zid] = z
    return out


def _check_inside(at: Path, obj: dict[str, Any], zone: dict[str, int], fx: str, fy: str,
                  own: bool = False) -> None:
    which = "the zone" if own else f"zone {zone['id']}"
    for f, size in ((fx, "width"), (fy, "height")):
        if obj[f] >= zone[size]:
            raise Bad(at + (f,), f"{f} {obj[f]} is outside {which}: {size} {zone[size]}, "
                                 f"so {f} is 0..{zone[size] - 1}")


def _living_record(at: Path, kind: str, e: dict[str, Any], zone: dict[str, int]) -> bytes:
    """Cross-checks of a player or npc, and its packed record."""
    hp, max_hp = e["hp"], e["max_hp"]
    if hp > max_hp:
        raise Bad(at + ("hp",), f"hp {hp} is above max_hp {max_hp}")
    if e["respawn_tick"] == 0 and hp == 0:
        raise Bad(at + ("hp",), "hp 0 with respawn_tick 0: a living entity (respawn_tick 0) has hp >= 1")
    if e["respawn_tick"] != 0 and hp != 0:
        raise Bad(at + ("hp",), f"hp {hp} with respawn_tick {e['respawn_tick']}: "
                                "a dead entity (respawn_tick > 0) has hp 0")
    name = check_name(at + ("name",), e["name"], NAME_MAX)
    if kind == "player":
        online = e["online"]
        if type(online) is not bool:
            raise Bad(at + ("online",), f"online must be true or false, got {describe(online)}")
        kind_code, last_seq, home = Kind.player, e["last_seq"], (0, 0)
    else:
        if e["home_x"] >= zone["width"] or e["home_y"] >= zone["height"]:
            _check_inside(at, e, zone, "home_x", "home_y")
        kind_code, online, last_seq, home = Kind.npc, False, 0, (e["home_x"], e["home_y"])
    return ENTITY.pack(e["id"], e["gold"], 0, e["next_action_tick"], e["respawn_tick"], last_seq,
                       e["zone"], hp, max_hp, e["attack"], e["defense"], e["potions"], e["x"], e["y"],
                       home[0], home[1], kind_code, 0, int(online), len(name), name)


# ---------------------------------------------------------------- dumping

def dump_world(world: WorldData, path: str | os.PathLike[str]) -> None:
    """Write `world` as a world file (see world_json)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(world_json(world))


def world_json(world: WorldData) -> str:
    """The world file text: fixed key order, one zone or entity a line, ascending id.

    The same world always gives the same bytes, and load_world reads it back
    to an equal WorldData.
    """
    zones = sorted(ZONE.iter_unpack(world.zones))
    view = memoryview(world.entities)
    if len(view) % ENTITY_SIZE:
        raise ValueError(f"entities is {len(view)} bytes, not a whole number of {ENTITY_SIZE}-byte records")
    records = sorted((ENTITY.unpack_from(view, i), i) for i in range(0, len(view), ENTITY_SIZE))
    entities = [_entity_line(values, view[i:i + ENTITY_SIZE]) for values, i in records]
    return "\n".join([
        "{",
        f'  "format": "{FORMAT}",',
        f'  "seed": {world.seed}, "tick": {world.tick}, "next_id": {world.next_id},',
        *_array_lines("zones", [json.dumps(dict(zip(ZONE_FIELDS, z))) for z in zones], ","),
        *_array_lines("entities", entities, ""),
        "}",
    ]) + "\n"


def _array_lines(key: str, items: list[str], end: str) -> list[str]:
    if not items:
        return [f'  "{key}": []{end}']
    return [f'  "{key}": [', *(f"    {item}," for item in items[:-1]), f"    {items[-1]}", f"  ]{end}"]


# The record fields each kind leaves unused: zero in the canonical encoding.
_UNUSED = {
    Kind.player.value: ("amount", "home_x", "home_y", "item_type"),
    Kind.npc.value: ("amount", "last_seq", "online", "item_type"),
    Kind.item.value: ("gold", "next_action_tick", "respawn_tick", "last_seq", "hp", "max_hp", "attack",
                      "defense", "potions", "home_x", "home_y", "online", "name_len"),
}
_KIND_NAMES = {k.value: k.name for k in Kind}
_ITEM_TYPE_NAMES = {ItemType.gold.value: "gold", ItemType.potion.value: "potion"}


def _entity_line(values: tuple[Any, ...], record: memoryview) -> str:
    """One Entity record as its world-file line, keys in FORMATS.md order.

    Written with f-strings rather than json.dumps (3x faster, same bytes).
    Refuses a record that is not canonical (a non-zero unused field, bad
    padding): a dump of it could not load back to the same bytes.
    """
    r = dict(zip(ENTITY_FIELDS, values))
    eid, kind = r["id"], r["kind"]
    if kind not in _UNUSED:
        raise ValueError(f"entity {eid}: kind {kind} is not player, npc or item")
    kind_name = _KIND_NAMES[kind]
    for f in _UNUSED[kind]:
        if r[f]:
            raise ValueError(f"entity {eid}: a {kind_name}'s {f} must be 0, got {r[f]}")
    name_len = r["name_len"]
    if name_len > NAME_MAX or any(r["name"][name_len:]) or any(record[ENTITY_SIZE - 4:]):
        raise ValueError(f"entity {eid}: name or padding bytes are not canonical")
    try:
        name = _quote(r["name"][:name_len].decode())
    except UnicodeDecodeError:
        raise ValueError(f"entity {eid}: name is not UTF-8") from None
    head = f'{{"id": {eid}, "kind": "{kind_name}", "zone": {r["zone"]}, "x": {r["x"]}, "y": {r["y"]}, '
    if kind == Kind.item:
        item_type = _ITEM_TYPE_NAMES.get(r["item_type"])
        if item_type is None:
            raise ValueError(f"entity {eid}: item_type {r['item_type']} is not gold or potion")
        return head + f'"item_type": "{item_type}", "amount": {r["amount"]}}}'
    body = (f'"hp": {r["hp"]}, "max_hp": {r["max_hp"]}, "attack": {r["attack"]}, '
            f'"defense": {r["defense"]}, "gold": {r["gold"]}, "potions": {r["potions"]}, '
            f'"next_action_tick": {r["next_action_tick"]}, "respawn_tick": {r["respawn_tick"]}, ')
    if kind == Kind.player:
        if r["online"] > 1:
            raise ValueError(f"entity {eid}: online {r['online']} is not 0 or 1")
        online = "true" if r["online"] else "false"
        return head + body + f'"online": {online}, "name": {name}, "last_seq": {r["last_seq"]}}}'
    return head + body + f'"name": {name}, "home_x": {r["home_x"]}, "home_y": {r["home_y"]}}}'


