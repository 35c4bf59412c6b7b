"""What players send and what they get back, as text and as XML (docs/xmpp.md).

Pure: strings and xml.etree elements in, command dicts, strings and
elements out; no slixmpp, no I/O, so every rule here is unit tested.

In: a chat body is a text command any client can type (`move 1 0`, `n`,
`attack 17`, `say hello`); bots send `<command xmlns=COMMAND_NS op=... seq=.../>`
instead, carrying their own seq. Either becomes a `Request`; `look` and
`help` are answered locally; what cannot be read becomes a `ParseError`,
which the component hands to negotiate as `Unreadable` so that it is
refused, answered and counted like every other refusal.

Out: `refusal` for negotiate's refusals; `PlayerReport` gathers everything
one tick has for one player (rejections, chat, area-of-interest changes)
into ONE message: a short human line and an `<update xmlns=UPDATE_NS>`,
whose `acked` names the player's highest seq the tick committed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from ..batches import OP_FIELDS

COMMAND_NS = "urn:fluxworld:command:1"
UPDATE_NS = "urn:fluxworld:update:1"
MAX_BODY_CHARS = 2048          # a longer body is refused unread
SHOWN_ENTITIES = 6             # entities named in a human line; the payload has them all

# y grows southward, as on a screen: the zone's row 0 is its north edge.
DIRECTIONS = {"n": (0, -1), "s": (0, 1), "e": (1, 0), "w": (-1, 0),
              "ne": (1, -1), "nw": (-1, -1), "se": (1, 1), "sw": (-1, 1)}
_INT_FIELDS = frozenset({"player", "seq", "zone", "dx", "dy", "target", "item", "to", "amount"})
_TEXT_ARGS = {"move": ("dx", "dy"), "attack": ("target",), "pickup": ("item",), "transfer": ("to", "amount"),
              "use": (), "leave": ()}
KIND_NAMES = {0: "player", 1: "npc", 2: "item"}
ITEM_NAMES = {1: "gold", 2: "potion"}

HELP = """fluxworld commands (one per message):
  look                 where you are and what is near
  move DX DY           step; DX, DY in -1..1 (or n s e w ne nw se sw)
  attack ID            hit a neighbour (distance 1)
  pickup ID            take an item next to you
  use                  drink a potion (+30 hp)
  transfer ID AMOUNT   send gold to another player
  say TEXT             talk to players within 10 cells
  join [ZONE]          enter the world (your presence does this)
  leave                leave the world (going offline does this)"""


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
class ParseError:
    reason: str


Parsed = Request | LocalQuery | ParseError


def parse_text(body: str) -> Parsed:
    if len(body) > MAX_BODY_CHARS:
        return ParseError(f"too large: {len(body)} characters, at most {MAX_BODY_CHARS}")
    words = body.split()
    if not words:
        return ParseError("empty message; send `help` for the commands")
    verb, args = words[0].lower(), words[1:]
    if verb in ("look", "help", "?"):
        return LocalQuery("help" if verb == "?" else verb)
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


def _int(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


# ---------------------------------------------------------------- out

def refusal(reason: str, command: Any) -> tuple[str, ET.Element]:
    """The answer to a refused input: `refused: REASON` and `<refused seq= reason=/>`."""
    element = ET.Element(f"{{{UPDATE_NS}}}refused", {"reason": reason})
    if isinstance(command, dict) and isinstance(command.get("seq"), int):
        element.set("seq", str(command["seq"]))
        if isinstance(command.get("op"), str):
            element.set("op", command["op"])
    return f"refused: {reason}", element


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


def _entity_element(parent: ET.Element, entity: dict[str, Any]) -> None:
    attrs = {"id": entity["id"], "kind": KIND_NAMES[entity["kind"]], "x": entity["x"], "y": entity["y"]}
    if entity["kind"] == 2:
        attrs |= {"item": ITEM_NAMES.get(entity["item_type"], "none"), "amount": entity["amount"]}
    else:
        attrs |= {"name": entity["name"], "hp": entity["hp"], "max_hp": entity["max_hp"], "gold": entity["gold"],
                  "dead": int(entity["respawn_tick"] != 0)}
        if entity["kind"] == 0:
            attrs |= {"potions": entity["potions"], "online": entity["online"]}
    ET.SubElement(parent, f"{{{UPDATE_NS}}}entity", {k: str(v) for k, v in attrs.items()})


@dataclass
class PlayerReport:
    """One tick's news for one player, sent as one message."""

    tick: int
    rejected: list[tuple[int, str, str]] = field(default_factory=list)    # (seq, op, reason)
    chat: list[tuple[int, str, str]] = field(default_factory=list)        # (from id, from name, text)
    seen: list[dict[str, Any]] = field(default_factory=list)              # entities that entered or changed
    entered: set[int] = field(default_factory=set)
    left: list[int] = field(default_factory=list)
    acked: int | None = None        # the player's highest seq in the tick's batch: its commands took effect

    def render(self) -> tuple[str, ET.Element]:
        root = ET.Element(f"{{{UPDATE_NS}}}update", {"tick": str(self.tick)})
        if self.acked is not None:
            root.set("acked", str(self.acked))
        lines = []
        for seq, op, reason in self.rejected:
            lines.append(f"{op} rejected: {reason}")
            ET.SubElement(root, f"{{{UPDATE_NS}}}rejected", {"seq": str(seq), "op": op, "reason": reason})
        for speaker, name, text in self.chat:
            lines.append(f"{name or 'player'}#{speaker}: {text}")
            ET.SubElement(root, f"{{{UPDATE_NS}}}chat", {"from": str(speaker)}).text = text
        for entity in self.seen:
            _entity_element(root, entity)
        for gone in self.left:
            ET.SubElement(root, f"{{{UPDATE_NS}}}left", {"id": str(gone)})
        if self.seen or self.left:
            lines.append(self._aoi_line())
        return "\n".join(lines), root

    def _aoi_line(self) -> str:
        parts = [("+" if e["id"] in self.entered else "") + describe(e) for e in self.seen[:SHOWN_ENTITIES]]
        parts += [f"-#{i}" for i in self.left[:max(0, SHOWN_ENTITIES - len(parts))]]
        more = len(self.seen) + len(self.left) - len(parts)
        return f"tick {self.tick}: " + "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
