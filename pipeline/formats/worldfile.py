"""World files (FORMATS.md "World file"; docs/rules.md "World files"): load strictly,
both format versions; writing is worlddump.py's, always the newest.

Loading checks every rule of docs/rules.md "Value ranges" and names the
file, line and field of the first problem. The fast path is json.loads plus
one pass over plain dicts; line numbers are worked out only on error
(pipeline/formats/jsoninput.py).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from schema._generated.layout import ItemType, Kind, TransitKind
from vocabulary.errors import InputError
from vocabulary.ids import ID_LIMIT, PLAY_IDS, ZONE_IDS, zone_first_id, zone_id_end
from vocabulary.records import ENTITY, NAME_MAX, pack_transit, pack_zone
from vocabulary.types import WorldData

from .jsoninput import (
    U32_MAX,
    U64_MAX,
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
from .worlddump import FORMAT
from .worlddump import dump_world as dump_world  # re-exported: the world file's reader and writer
from .worlddump import world_json as world_json

FORMAT_1 = "fluxworld.world/1"   # no zone next_id, no transit: still read
U62 = 2**62
TICK_REACH = U62 + 10    # a tick of at most 2^62 plus the rules' longest wait (respawn, 10 ticks)
STAT_MAX = 1_000_000  # max_hp, attack, defense, potions

TOP_FIELDS = {FORMAT_1: ("format", "seed", "tick", "next_id", "zones", "entities"),
              FORMAT: ("format", "seed", "tick", "next_id", "zones", "entities", "transit")}
ZONE_FIELDS = {FORMAT_1: ("id", "width", "height", "spawn_x", "spawn_y"),
               FORMAT: ("id", "width", "height", "spawn_x", "spawn_y", "next_id")}
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
_GOLD_WAY = ("kind", "arrive_tick", "from", "to", "amount")
# A credit may name any id, even none a transfer could (0 from a frame made by hand): that is play too.
_TRANSIT = Variants("kind", {"credit": _GOLD_WAY, "refund": _GOLD_WAY, "traveller": ("kind", "arrive_tick", "entity")},
                    {"arrive_tick": (0, U62 + 1), "from": (0, U64_MAX), "to": (0, U64_MAX), "amount": (1, U62)},
                    noun="a transit item", allowed='"credit", "refund", "traveller"',
                    variant_noun=lambda kind: f"a {kind}")

Zones = dict[int, dict[str, int]]
# An entity object checked and packed: (kind, record, the field its gold is in, its gold).
Checked = tuple[str, bytes, str, int]


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
    if fmt not in TOP_FIELDS:
        what = "is missing" if "format" not in top else f"is {describe(fmt)}"
        raise Bad(("format",), f'"format" {what}; a world file starts with "format": "{FORMAT}" '
                               f'(or the older "{FORMAT_1}")')
    check_keys((), top, TOP_FIELDS[fmt], "a world file")
    seed = check_int(("seed",), top["seed"], 0, U62)
    tick = check_int(("tick",), top["tick"], 0, U62)
    # Joins take ids below 2^62; from there up they are the zones' (docs/rules.md "Ids").
    next_id = check_int(("next_id",), top["next_id"], 0, PLAY_IDS)
    zones = _check_zones(check_list(("zones",), top["zones"]), ZONE_FIELDS[fmt])
    entities = check_list(("entities",), top["entities"])

    seen: dict[int, Path] = {}
    players: set[int] = set()
    records: list[tuple[int, bytes]] = []
    total_gold = 0

    def entity(at: Path, e: Any) -> Checked:
        kind = _ENTITIES.check(at, e)
        _check_id(at + ("id",), e["id"], next_id, zones, seen)
        if kind == "player":
            players.add(e["id"])
        return _check_entity(at, kind, e, zones)

    def count_gold(at: Path, gold: int) -> None:
        nonlocal total_gold
        total_gold += gold
        if total_gold > U62:
            raise Bad(at, f"the world's total gold reaches {total_gold}, above 2^62")

    for i, e in enumerate(entities):
        at: Path = ("entities", i)
        _, record, gold_field, gold = entity(at, e)
        count_gold(at + (gold_field,), gold)
        records.append((e["id"], record))
    records.sort()
    key_count = len(top) + len(zones) * len(ZONE_FIELDS[fmt]) + sum(map(len, entities))
    transit = b""
    if fmt == FORMAT:
        items = check_list(("transit",), top["transit"])
        transit = _check_transit(items, tick, zones, entity, players, count_gold)
        key_count += sum(len(t) + len(t.get("entity", ())) for t in items)
    world = WorldData(seed=seed, tick=tick, next_id=next_id,
                      zones=b"".join(pack_zone(**zones[z]) for z in sorted(zones)),
                      entities=b"".join(r for _, r in records), transit=transit)
    return world, key_count


def _check_entity(at: Path, kind: str, e: dict[str, Any], zones: Zones) -> Checked:
    """The rest of one entity object's rules, once its fields are known good, and its packed record."""
    zone = zones.get(e["zone"])
    if zone is None:
        known = ", ".join(map(str, sorted(zones))) or "none"
        raise Bad(at + ("zone",), f"zone {e['zone']} does not exist (zones: {known})")
    if e["x"] >= zone["width"] or e["y"] >= zone["height"]:
        _check_inside(at, e, zone, "x", "y")
    if kind != "item":
        return kind, _living_record(at, kind, e, zone), "gold", e["gold"]
    item_type = _ITEM_TYPES.get(e["item_type"]) if type(e["item_type"]) is str else None
    if item_type is None:
        raise Bad(at + ("item_type",), f'item_type must be "gold" or "potion", got {describe(e["item_type"])}')
    amount = e["amount"]
    if item_type == ItemType.potion and amount != 1:
        raise Bad(at + ("amount",), f"a potion's amount is 1, got {amount}")
    if item_type == ItemType.gold and amount < 1:
        raise Bad(at + ("amount",), f"a gold item's amount is 1..2^62, got {amount}")
    record = ENTITY.pack(e["id"], 0, amount, 0, 0, 0, e["zone"], 0, 0, 0, 0, 0, e["x"], e["y"],
                         0, 0, Kind.item, item_type, 0, 0, b"")
    return kind, record, "amount", (amount if item_type == ItemType.gold else 0)


def _check_id(at: Path, eid: int, next_id: int, zones: Zones, seen: dict[int, Path]) -> None:
    """An id is unique, and below the next_id of whoever hands it out: the world's for ids
    below 2^62 (joins), else the zone's whose range holds it (docs/rules.md "Ids")."""
    if eid < PLAY_IDS and eid >= next_id:
        raise Bad(at, f"id {eid} is not below next_id {next_id}; ids below 2^62 are 1..next_id-1")
    if eid >= PLAY_IDS:
        owner = (eid - PLAY_IDS) // ZONE_IDS
        zone = zones.get(owner)
        if zone is None:
            raise Bad(at, f"id {eid} is from 2^62 up, an id play created, in the range of zone {owner}, "
                          "which does not exist")
        if eid >= zone["next_id"]:
            raise Bad(at, f"id {eid} is from 2^62 up, an id play created, and not below zone {owner}'s "
                          f"next_id {zone['next_id']}")
    if eid in seen:
        raise Bad(at, f"id {eid} is used twice (also by {path_str(seen[eid][:-1])})")
    seen[eid] = at


def _check_transit(items: list[Any], tick: int, zones: Zones, entity: Callable[[Path, Any], Checked],
                   players: set[int], count_gold: Callable[[Path, int], None]) -> bytes:
    """What is in flight: travellers first, ascending id, then credits and refunds; all of
    it due at tick + 1, each credit's sender and refund's recipient a player."""
    packed: list[bytes] = []
    last_traveller = 0
    gold_ways = False
    for i, t in enumerate(items):
        at: Path = ("transit", i)
        kind = _TRANSIT.check(at, t)
        if t["arrive_tick"] != tick + 1:
            raise Bad(at + ("arrive_tick",), f"arrive_tick {t['arrive_tick']} is not the world's tick + 1 "
                                             f"({tick + 1}): what a tick sends arrives at the start of the next")
        if kind != "traveller":
            gold_ways = True
            sender = "from" if kind == "credit" else "to"
            if t[sender] not in players:
                raise Bad(at + (sender,), f"{sender} {t[sender]} is no player of the world: a {kind}'s "
                                          f"{'sender' if kind == 'credit' else 'recipient'} is one")
            count_gold(at + ("amount",), t["amount"])
            packed.append(pack_transit(TransitKind[kind], t["arrive_tick"], from_id=t["from"], to_id=t["to"],
                                       amount=t["amount"]))
            continue
        e_at = at + ("entity",)
        if gold_ways:
            raise Bad(e_at, "a traveller after a credit or refund: travellers come first")
        e_kind, record, _, gold = entity(e_at, t["entity"])
        e = t["entity"]
        if e_kind != "player":
            raise Bad(e_at + ("kind",), f"a traveller is a player, not a{'n' if e_kind == 'item' else ''} {e_kind}")
        if e["id"] <= last_traveller:
            raise Bad(e_at + ("id",), f"id {e['id']} is not above the traveller before it: travellers go by id")
        if not e["online"] or e["respawn_tick"]:
            raise Bad(e_at + ("online" if not e["online"] else "respawn_tick",),
                      "a traveller is online and alive, as it was when it left")
        zone = zones[e["zone"]]
        if (e["x"], e["y"]) != (zone["spawn_x"], zone["spawn_y"]):
            raise Bad(e_at + ("x",), f"a traveller is at its zone's spawn point, "
                                     f"{zone['spawn_x']},{zone['spawn_y']}, not {e['x']},{e['y']}")
        last_traveller = e["id"]
        count_gold(e_at + ("gold",), gold)
        packed.append(pack_transit(TransitKind.traveller, t["arrive_tick"], to_id=e["id"], record=record))
    return b"".join(packed)


def _check_zones(zones: list[Any], fields: tuple[str, ...]) -> Zones:
    out: Zones = {}
    for i, z in enumerate(zones):
        at: Path = ("zones", i)
        check_keys(at, check_object(at, z, "a zone"), fields, "a zone")
        zid = check_int(at + ("id",), z["id"], 0, U32_MAX)
        check_int(at + ("width",), z["width"], 1, 65535)
        check_int(at + ("height",), z["height"], 1, 65535)
        check_int(at + ("spawn_x",), z["spawn_x"], 0, 65534)
        check_int(at + ("spawn_y",), z["spawn_y"], 0, 65534)
        if zid in out:
            raise Bad(at + ("id",), f"zone id {zid} is used twice")
        _check_inside(at, z, z, "spawn_x", "spawn_y", own=True)
        # A version-1 zone has created nothing yet: its next_id is where its range starts.
        next_id = check_int(at + ("next_id",), z["next_id"], zone_first_id(zid), zone_id_end(zid)) \
            if "next_id" in fields else zone_first_id(zid)
        out[zid] = {**z, "next_id": next_id}
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


