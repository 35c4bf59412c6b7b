"""Effects from their binary form (schema/world.fbs Effect) to JSON objects."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from schema._generated.layout import EFFECT_DTYPE, EffectKind, Reason
from vocabulary.types import TickResult

_KIND_NAMES = {k.value: k.name for k in EffectKind}
_REASON_NAMES = {r.value: r.name for r in Reason}


def effect_array(result: TickResult) -> np.ndarray:
    """The tick's effects as a structured numpy array (no copy)."""
    return np.frombuffer(result.effects, dtype=EFFECT_DTYPE)


def most_sightings(result: TickResult) -> int:
    """The most area-of-interest effects (enter, update, leave) one observer got in the tick:
    never above 64, one for each entity of its old or new area (docs/rules.md)."""
    effects = effect_array(result)
    observers = effects["subject"][effects["kind"] >= EffectKind.enter]
    return int(np.unique(observers, return_counts=True)[1].max()) if len(observers) else 0


def effects_json(result: TickResult, text: bytes) -> Iterator[dict[str, Any]]:
    """The tick's effects as JSON objects, in order, keys as docs/rules.md lists them.

    `text` is the tick's CommandFrame text blob, where chat texts live.
    """
    recipients = np.frombuffer(result.recipients, dtype="<u8")
    tick = result.tick
    for e in effect_array(result).tolist():
        subject, obj, text_offset, text_len, list_offset, list_count, kind, reason = e
        name = _KIND_NAMES[kind]
        if kind == EffectKind.rejected:
            yield {"tick": tick, "type": name, "player": subject, "seq": obj, "reason": _REASON_NAMES[reason]}
        elif kind == EffectKind.chat:
            yield {"tick": tick, "type": name, "from": subject,
                   "text": text[text_offset:text_offset + text_len].decode(),
                   "recipients": recipients[list_offset:list_offset + list_count].tolist()}
        elif kind == EffectKind.died:
            yield {"tick": tick, "type": name, "entity": subject, "by": obj}
        elif kind == EffectKind.respawned:
            yield {"tick": tick, "type": name, "entity": subject}
        else:
            yield {"tick": tick, "type": name, "observer": subject, "entity": obj}
