"""The effects of one tick, packed as they happen (schema/world.fbs Effect).

Rules append in the order docs/rules.md fixes ("Effects and their order");
the log never reorders. Fields an effect kind does not use stay zero.
"""

from __future__ import annotations

import struct

from schema._generated import layout
from schema._generated.layout import EffectKind, Reason

EFFECT = struct.Struct(layout.EFFECT_FORMAT)


class EffectLog:
    def __init__(self) -> None:
        self._effects: list[bytes] = []
        self._recipients: list[int] = []

    def _add(self, kind: EffectKind, subject: int, object: int = 0, *, text_offset: int = 0,
             text_len: int = 0, list_offset: int = 0, list_count: int = 0,
             reason: Reason = Reason.none) -> None:
        # Argument order of EFFECT.pack is layout.EFFECT_FIELDS.
        self._effects.append(EFFECT.pack(subject, object, text_offset, text_len,
                                         list_offset, list_count, kind, reason))

    def rejected(self, player: int, seq: int, reason: Reason) -> None:
        self._add(EffectKind.rejected, player, seq, reason=reason)

    def chat(self, speaker: int, text_offset: int, text_len: int, recipients: list[int]) -> None:
        """`text_offset`/`text_len` point into the tick's CommandFrame text."""
        self._add(EffectKind.chat, speaker, text_offset=text_offset, text_len=text_len,
                  list_offset=len(self._recipients), list_count=len(recipients))
        self._recipients.extend(recipients)

    def died(self, entity: int, by: int) -> None:
        self._add(EffectKind.died, entity, by)

    def respawned(self, entity: int) -> None:
        self._add(EffectKind.respawned, entity)

    def sight(self, kind: EffectKind, observer: int, entity: int) -> None:
        """An area-of-interest effect: enter, update or leave."""
        self._add(kind, observer, entity)

    def effects(self) -> bytes:
        return b"".join(self._effects)

    def recipients(self) -> bytes:
        return struct.pack(f"<{len(self._recipients)}Q", *self._recipients)
