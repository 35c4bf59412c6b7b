"""Outgoing stanzas as text: what the gateway writes to the XMPP stream.

A tick can owe thousands of players a message each, and many of them name
the same entities, so stanzas are built as strings (never as element
trees) and each entity's line is rendered once per tick however many
players see it (`EntityText`). The entities of an update travel as plain
text in one element (docs/xmpp.md), not as an element each: the XMPP
server builds a Lua table for every element and attribute it routes and
escapes every quote it writes, and that, not parsing, was its cost (perf on
Prosody at 1,000 players: 62% in the Lua VM, 22% in malloc, 5% in expat).
Prosody's CPU per stanza carrying 20 entities, measured side by side: 190
us as elements, 88 us as JSON (its quotes are escaped on the way out), 45
us as this text; a bare stanza 40-47 us. Every text that came from outside
(names, chat) is escaped, and characters XML 1.0 forbids are dropped: one
of them would make the XMPP server close the component's stream.
"""

from __future__ import annotations

import re
from typing import Any, Iterable
from urllib.parse import quote

from vocabulary.records import unpack_entity

from .protocol import ITEM_NAMES, KIND_NAMES, UPDATE_NS, describe

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
NO_STORE = '<no-store xmlns="urn:xmpp:hints"/>'
SHOWN_ENTITIES = 6             # entities named in a human line; the payload has them all


def text(value: str) -> str:
    """`value` as XML character data or attribute value (double-quoted)."""
    return _FORBIDDEN.sub("", value).translate(_ESCAPES)


def message(to: str, sender: str, body: str, payload: str = "") -> str:
    """A chat message; hinted (XEP-0334) not to be stored for later: the world's news is live."""
    body_xml = f"<body>{text(body)}</body>" if body else ""
    return f'<message to="{text(to)}" from="{sender}" type="chat">{body_xml}{payload}{NO_STORE}</message>'


def refused(reason: str, command: Any) -> tuple[str, str]:
    """The answer to a refused input: `refused: REASON` and `<refused seq= op= reason=/>`."""
    attrs = ""
    if isinstance(command, dict) and isinstance(command.get("seq"), int):
        attrs = f' seq="{command["seq"]}"'
        if isinstance(command.get("op"), str):
            attrs += f' op="{text(command["op"])}"'
    return f"refused: {reason}", f'<refused xmlns="{UPDATE_NS}"{attrs} reason="{text(reason)}"/>'


def entity_line(e: dict[str, Any]) -> str:
    """The entity as `<seen>` lists it: protocol.SEEN_FIELDS separated by spaces; kind and item as
    words, the name percent-encoded (RFC 3986) so that it holds no space, `;` or markup."""
    item = ITEM_NAMES.get(e["item_type"], "none") if e["kind"] == 2 else "none"
    return (f'{e["id"]} {KIND_NAMES[e["kind"]]} {e["x"]} {e["y"]} {e["hp"]} {e["max_hp"]} {e["gold"]} '
            f'{int(e["respawn_tick"] != 0)} {e["potions"]} {e["online"]} {item} {e["amount"]} {quote(e["name"])}')


class EntityText:
    """Each entity's line and its short description, rendered at most once per world state
    (the description only if some chat client is told of it)."""

    def __init__(self) -> None:
        self._lines: dict[int, str] = {}
        self._descriptions: dict[int, str] = {}

    def forget(self, ids: Iterable[int]) -> None:
        """These entities changed: render them again when next asked."""
        lines, descriptions = self._lines.pop, self._descriptions.pop
        for i in ids:
            lines(i, None)
            descriptions(i, None)

    def clear(self) -> None:
        self._lines.clear()
        self._descriptions.clear()

    def line(self, entity_id: int, record: bytes) -> str:
        cached = self._lines.get(entity_id)
        if cached is None:
            cached = self._lines[entity_id] = entity_line(unpack_entity(record))
        return cached

    def description(self, entity_id: int, record: bytes) -> str:
        cached = self._descriptions.get(entity_id)
        if cached is None:
            cached = self._descriptions[entity_id] = describe(unpack_entity(record))
        return cached


def update(tick: int, acked: int | None, rejected: list[tuple[int, str, str]], chat: list[tuple[int, str, str]],
           seen: list[tuple[int, bool, str, str]], left: list[int], human: bool = True) -> tuple[str, str]:
    """(body, `<update/>`) for one player: rejections (seq, op, reason), chat (from, name, text),
    entities seen (id, entered, line, description) and entities that left its area. Without
    `human` the body is empty: a program reads the payload, and Prosody parses half the bytes."""
    head = f'<update xmlns="{UPDATE_NS}" tick="{tick}"' + (f' acked="{acked}"' if acked is not None else "")
    parts, lines = [head, ">"], []
    for seq, op, reason in rejected:
        lines.append(f"{op} rejected: {reason}")
        parts.append(f'<rejected seq="{seq}" op="{op}" reason="{reason}"/>')
    for speaker, name, said in chat:
        lines.append(f"{name or 'player'}#{speaker}: {said}")
        parts.append(f'<chat from="{speaker}">{text(said)}</chat>')
    if not human:
        lines = []
    if seen:
        parts.append("<seen>" + ";".join(entity for _, _, entity, _ in seen) + "</seen>")
    if left:
        parts.append("<left>" + " ".join(map(str, left)) + "</left>")
    if (seen or left) and human:
        shown = [("+" if entered else "") + description for _, entered, _, description in seen[:SHOWN_ENTITIES]]
        shown += [f"-#{i}" for i in left[:max(0, SHOWN_ENTITIES - len(shown))]]
        more = len(seen) + len(left) - len(shown)
        lines.append(f"tick {tick}: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else ""))
    if len(parts) == 2:
        return "\n".join(lines), head + "/>"
    parts.append("</update>")
    return "\n".join(lines), "".join(parts)
