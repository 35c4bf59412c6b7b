"""What players send and what they get back, as text and as XML (docs/xmpp.md).

Pure: strings and xml.etree elements in, command dicts, strings and
elements out; no slixmpp, no I/O, so every rule here is unit tested.

In: a chat body is a text command any client can type (`move 1 0`, `n`,
`attack 17`, `say hello`); bots send `<command xmlns=COMMAND_NS op=... seq=.../>`
instead, carrying their own seq. Either becomes a `Request`; `look` and
`help` are answered locally; what cannot be read becomes a `ParseError`,
which the component hands to negotiate as `Unreadable` so that it is
refused, answered and counted like every other refusal.

`updates digest|live|off|HZ` (a payload `op="updates" hz=`) sets how
often the player hears from the world: an `UpdatesSetting` the gateway
keeps. Out: `describe` and `look_text` make the human lines; the stanzas
themselves are made in stanzas.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

from ..formats.batches import OP_FIELDS

COMMAND_NS = "urn:fluxworld:command:1"
UPDATE_NS = "urn:fluxworld:update:2"
MAX_BODY_CHARS = 2048          # a longer body is refused unread
MAX_UPDATES_HZ = 1000.0

# y grows southward, as on a screen: the zone's row 0 is its north edge.
DIRECTIONS = {"n": (0, -1), "s": (0, 1), "e": (1, 0), "w": (-1, 0),
              "ne": (1, -1), "nw": (-1, -1), "se": (1, 1), "sw": (-1, 1)}
_INT_FIELDS = frozenset({"player", "seq", "zone", "dx", "dy", "target", "item", "to", "amount"})
_TEXT_ARGS = {"move": ("dx", "dy"), "attack": ("target",), "pickup": ("item",), "transfer": ("to", "amount"),
              "use": (), "leave": (), "travel": ("zone",)}
KIND_NAMES = {0: "player", 1: "npc", 2: "item"}
ITEM_NAMES = {1: "gold", 2: "potion"}

HELP = """fluxworld commands (one per message):
  look                 you, and the 31 nearest within 10
  move DX DY           step; DX, DY in -1..1 (or n s e w ne nw se sw)
  attack ID            hit a neighbour (distance 1)
  pickup ID            take an item next to you
  use                  drink a potion (+30 hp)
  transfer ID AMOUNT   send gold to another player
  say TEXT             talk to players within 10 cells
  travel ZONE          go to another zone's spawn point (you arrive next tick)
  join [ZONE]          enter the world (your presence does this)
  leave                leave the world (going offline does this)
  updates MODE         what the world tells you, and when: digest (a summary every
                       few seconds; what happens to you at once; the default),
                       live (every tick), off (only what happens to you), or HZ"""


@dataclass(frozen=True)
class Request:
    """A command without its player (the sender's entity) and, from text, without its seq."""

    op: str
    fields: dict[str, Any]
    seq: int | None = None
    player: int | None = None       # a payload may name one; negotiate refuses another's


@dataclass(frozen=True)
class LocalQuery:
    """`look` or `help`: answered by the component, never a command."""

    what: str


@dataclass(frozen=True)
class UpdatesSetting:
    """How the player wants news: `mode` live (every tick), digest, off, or hz (`hz` a second)."""

    mode: str
    hz: float | None = None


@dataclass(frozen=True)
class ParseError:
    reason: str


Parsed = Request | LocalQuery | UpdatesSetting | ParseError


def parse_text(body: str) -> Parsed:
    if len(body) > MAX_BODY_CHARS:
        return ParseError(f"too large: {len(body)} characters, at most {MAX_BODY_CHARS}")
    words = body.split()
    if not words:
        return ParseError("empty message; send `help` for the commands")
    verb, args = words[0].lower(), words[1:]
    if verb in ("look", "help", "?"):
        return LocalQuery("help" if verb == "?" else verb)
    if verb == "updates":
        return _updates(args[0] if len(args) == 1 else "", "usage: updates digest|live|off|HZ")
    if verb == "say":
        text = body.strip()[3:].strip()
        return Request("say", {"text": text}) if text else ParseError("say what? `say TEXT`")
    if verb in DIRECTIONS and not args:
        dx, dy = DIRECTIONS[verb]
        return Request("move", {"dx": dx, "dy": dy})
    if verb == "join":
        if len(args) > 1:
            return ParseError("usage: join [ZONE]")
        zone = _int(args[0]) if args else None
        if args and zone is None:
            return ParseError(f"join: zone must be a number, got {args[0]!r}")
        return Request("join", {} if zone is None else {"zone": zone})
    names = _TEXT_ARGS.get(verb)
    if names is None:
        return ParseError(f"unknown command {verb!r}; send `help` for the commands")
    if len(args) != len(names):
        usage = " ".join(n.upper() for n in names)
        return ParseError(f"usage: {verb} {usage}".rstrip())
    fields: dict[str, Any] = {}
    for name, arg in zip(names, args):
        value = _int(arg)
        if value is None:
            return ParseError(f"{verb}: {name} must be a whole number, got {arg!r}")
        fields[name] = value
    return Request(verb, fields)


def parse_payload(element: ET.Element) -> Parsed:
    """`<command xmlns=COMMAND_NS op= seq= [player=] FIELDS.../>`; `text` may be the element's text."""
    attrs = dict(element.attrib)
    op = attrs.pop("op", None)
    if op == "updates":
        return _updates(attrs.get("hz", ""), "payload: updates needs hz= (a number, live, digest or off)")
    if op not in OP_FIELDS:
        return ParseError(f"payload: op must be one of {', '.join(OP_FIELDS)}, got {op!r}")
    if element.text and element.text.strip() and "text" not in attrs:
        attrs["text"] = element.text
    allowed = {"seq", "player", *OP_FIELDS[op]}
    unknown = sorted(set(attrs) - allowed)
    if unknown:
        return ParseError(f"payload: unknown attribute {unknown[0]!r} for {op}")
    if "seq" not in attrs:
        return ParseError("payload: seq is required")
    values: dict[str, Any] = {}
    for key, raw in attrs.items():
        if key in _INT_FIELDS:
            value = _int(raw)
            if value is None:
                return ParseError(f"payload: {key} must be an integer, got {raw!r}")
            values[key] = value
        else:
            values[key] = raw
    seq, player = values.pop("seq"), values.pop("player", None)
    return Request(op, values, seq=seq, player=player)


def make_command(request: Request, player: int, seq: int) -> dict[str, Any]:
    """The FORMATS.md command object. A payload's own player and seq win, so
    that negotiate sees (and refuses) exactly what the client claimed."""
    player = request.player if request.player is not None else player
    seq = request.seq if request.seq is not None else seq
    return {"player": player, "seq": seq, "op": request.op, **request.fields}


def _updates(arg: str, usage: str) -> UpdatesSetting | ParseError:
    if arg.lower() in ("live", "digest", "off"):
        return UpdatesSetting(arg.lower())
    try:
        hz = float(arg)
    except ValueError:
        return ParseError(usage)
    if not 0 < hz <= MAX_UPDATES_HZ:
        return ParseError(f"updates: HZ must be above 0 and at most {MAX_UPDATES_HZ:g}, got {arg}")
    return UpdatesSetting("hz", hz)


def _int(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


# ---------------------------------------------------------------- out

SEEN_FIELDS = ("id", "kind", "x", "y", "hp", "max_hp", "gold", "dead", "potions", "online", "item", "amount", "name")
_SEEN_INTS = frozenset(SEEN_FIELDS) - {"kind", "item", "name"}
_SEEN_READERS: tuple[Callable[[str], Any], ...] = tuple(
    int if k in _SEEN_INTS else unquote if k == "name" else str for k in SEEN_FIELDS)


def read_seen(text: str | None) -> list[dict[str, Any]]:
    """The entities of an `<update>`'s `<seen>` text (docs/xmpp.md), as a client reads them."""
    if not text:
        return []
    return [{k: read(v) for k, read, v in zip(SEEN_FIELDS, _SEEN_READERS, line.split(" "))}
            for line in text.split(";")]


def read_left(text: str | None) -> list[int]:
    return [int(i) for i in text.split()] if text else []


def describe(entity: dict[str, Any]) -> str:
    """`rat#3 20/20hp at 34,16` and the like: one entity, briefly."""
    kind = entity["kind"]
    if kind == 2:
        what = ITEM_NAMES.get(entity["item_type"], "item")
        amount = f" {entity['amount']}" if entity["item_type"] == 1 else ""
        return f"{what}{amount}#{entity['id']} at {entity['x']},{entity['y']}"
    dead = " dead" if entity["respawn_tick"] else ""
    return f"{entity['name'] or KIND_NAMES[kind]}#{entity['id']} {entity['hp']}/{entity['max_hp']}hp{dead} " \
           f"at {entity['x']},{entity['y']}"


def look_text(me: dict[str, Any] | None, near: list[dict[str, Any]]) -> str:
    if me is None:
        return "you are not in the world; send `join` (or go online)"
    lines = [f"you: {describe(me)} gold {me['gold']} potions {me['potions']}"]
    lines += [f"  {describe(e)}" for e in near if e["id"] != me["id"]] or ["  nobody near"]
    return "\n".join(lines)
