"""Command batches (FORMATS.md "Command batches"): JSON Lines, one tick a line.

Reading checks shape and types only: a known op, exactly its fields, each of
its JSON type and integer width. A well-typed value outside a rule's range
(dx 2, amount -3, an empty text) is the reducers' business: they reject it
with a reason code (GAME_RULES.md "Field types"), so it is not bad input here.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from schema._generated.layout import ENTITY_DTYPE, Kind, Op

from .errors import InputError
from .jsoninput import (
    I64_MAX,
    I64_MIN,
    U32_MAX,
    U64_MAX,
    Bad,
    Path,
    Variants,
    check_int,
    check_keys,
    check_list,
    check_object,
    check_str,
    find_duplicate_key,
    key_count_bound,
    loads,
    path_str,
)
from .records import COMMAND, pack_commands
from .types import Batch, WorldData

TICK_MAX = 2**62  # the world file's tick range (docs/rules.md "Value ranges")

# Each op's own fields, in the order a command's JSON object lists them.
OP_FIELDS: dict[str, tuple[str, ...]] = {
    "join": ("zone", "name"), "leave": (), "move": ("dx", "dy"), "attack": ("target",),
    "pickup": ("item",), "use": (), "transfer": ("to", "amount"), "say": ("text",),
}
_COMMAND_FIELDS = {op: ("player", "seq", "op") + own for op, own in OP_FIELDS.items()}
# A player id or seq lands in the world (an id, next_id = id + 1, last_seq),
# so it keeps to the world file's 2^62 range; other ids only name entities.
_INT_RANGES = {
    "player": (1, 2**62 - 1), "seq": (1, 2**62), "target": (1, U64_MAX), "item": (1, U64_MAX),
    "to": (1, U64_MAX), "zone": (0, U32_MAX), "dx": (I64_MIN, I64_MAX), "dy": (I64_MIN, I64_MAX),
    "amount": (I64_MIN, I64_MAX),
}
_COMMANDS = Variants("op", _COMMAND_FIELDS, _INT_RANGES, noun="a command", allowed=", ".join(OP_FIELDS),
                     variant_noun=lambda op: f"a {op} command")
_STRINGS = {op: tuple(f for f in fields if f in ("name", "text")) for op, fields in _COMMAND_FIELDS.items()}
_OP_NAMES = {op.value: op.name for op in Op}


def read_batches(path: str | os.PathLike[str], *, after_tick: int) -> Iterator[Batch]:
    """Stream the batches of a JSON Lines file, checking each line as it is read.

    Ticks must be strictly increasing and above `after_tick` (the world's
    tick); gaps are allowed. Blank lines are skipped. Raises InputError naming
    the file, line and field of the first problem.
    """
    file = os.fspath(path)
    try:
        f = open(file, "rb")
    except OSError as e:
        raise InputError(f"cannot read the batches file: {e.strerror}", file=file) from None
    previous = (after_tick, 0)  # (tick, line it was on; 0 for the world's tick)
    with f:
        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                tick, commands = parse_batch_line(raw, previous)
            except Bad as bad:
                raise InputError(bad.message, file=file, line=line_no, field=path_str(bad.path) or None) from None
            packed, text = pack_commands(commands)
            yield Batch(tick=tick, commands=packed, text=text, source=f"{file}:{line_no}")
            previous = (tick, line_no)


def parse_batch_line(raw: bytes, previous: tuple[int, int]) -> tuple[int, list[dict[str, Any]]]:
    """One line's (tick, command dicts); `previous` is the (tick, line) it must follow."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Bad((), f"not UTF-8 text (byte {e.start} of the line)") from None
    try:
        doc = loads(text)
    except json.JSONDecodeError as e:
        raise Bad((), f"invalid JSON: {e.msg} (column {e.colno})") from None
    check_keys((), check_object((), doc, "a batch line"), ("tick", "commands"), "a batch line")
    tick = check_int(("tick",), doc["tick"], 0, TICK_MAX)
    last_tick, last_line = previous
    if tick <= last_tick:
        after = f"the previous batch's tick {last_tick} (line {last_line})" if last_line \
            else f"the world's tick {last_tick}"
        raise Bad(("tick",), f"tick {tick} is not above {after}; ticks must strictly increase")
    commands = check_list(("commands",), doc["commands"])
    for i, c in enumerate(commands):
        check_command(("commands", i), c)
    # json.loads keeps the last of two equal keys; see jsoninput.key_count_bound.
    if key_count_bound(text) != len(doc) + sum(map(len, commands)):
        dup = find_duplicate_key(text)
        if dup:
            raise Bad(dup, f'field "{dup[-1]}" appears more than once')
    return tick, commands


def check_command(at: Path, c: Any) -> None:
    """One command object: a known op, exactly its fields, each well typed."""
    op = _COMMANDS.check(at, c)
    for name in _STRINGS[op]:
        check_str(at + (name,), c[name])


def batch_commands_json(batch: Batch) -> list[dict[str, Any]]:
    """A batch's commands as FORMATS.md command objects (only the op's own keys)."""
    out = []
    for player, seq, target, dx, dy, amount, zone, text_offset, text_len, op in COMMAND.iter_unpack(batch.commands):
        name = _OP_NAMES[op]
        c: dict[str, Any] = {"player": player, "seq": seq, "op": name}
        text = batch.text[text_offset:text_offset + text_len].decode()
        own = {"zone": zone, "name": text, "dx": dx, "dy": dy, "target": target, "item": target,
               "to": target, "amount": amount, "text": text}
        for key in OP_FIELDS[name]:
            c[key] = own[key]
        out.append(c)
    return out


def batch_line(batch: Batch) -> str:
    """One batch as its JSON Lines line (without the newline)."""
    return json.dumps({"tick": batch.tick, "commands": batch_commands_json(batch)}, ensure_ascii=False)


def write_batches(path: str | os.PathLike[str], batches: Iterable[Batch]) -> None:
    """Write batches in the format read_batches reads; reading them back gives equal batches."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for batch in batches:
            f.write(batch_line(batch) + "\n")


class SeqGuard:
    """Checks that each player's seqs rise strictly through a run (a replay's input).

    GAME_RULES.md: the negotiate stage drops a seq not above the player's
    last_seq before it reaches a batch, so a batches file holding one was not
    produced by a server: bad input, not a rule rejection. `last_seq` gives a
    player's last_seq in the starting world, or None for an id that is not a
    player there (a join may create it; any seq >= 1 will do).
    """

    def __init__(self, last_seq: Callable[[int], int | None]) -> None:
        self._world_last_seq = last_seq
        self._seen: dict[int, tuple[int, str]] = {}  # player -> (highest seq, where it was)

    @classmethod
    def for_world(cls, world: WorldData) -> SeqGuard:
        records = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)
        players = records[records["kind"] == Kind.player]
        return cls(dict(zip(players["id"].tolist(), players["last_seq"].tolist())).get)

    def check(self, batch: Batch) -> None:
        """Raise InputError at the first stale or repeated seq in `batch`; else remember its seqs."""
        file, _, line = batch.source.rpartition(":")
        if not line.isdigit():
            file, line = batch.source, ""
        pending: dict[int, tuple[int, str]] = {}
        for i, (player, seq) in enumerate((c[0], c[1]) for c in COMMAND.iter_unpack(batch.commands)):
            before = pending.get(player) or self._seen.get(player)
            if before is None:
                world_seq = self._world_last_seq(player)
                before = None if world_seq is None else (world_seq, "its last_seq in the world")
            if before is not None and seq <= before[0]:
                raise InputError(f"seq {seq} is not above player {player}'s last seq {before[0]} ({before[1]})",
                                 file=file or None, line=int(line) if line else None, field=f"commands[{i}].seq")
            pending[player] = (seq, f"commands[{i}] on this line")
        where = f"line {line}" if line else batch.source or "an earlier batch"
        self._seen.update((p, (seq, where)) for p, (seq, _) in pending.items())
