"""Command batches (FORMATS.md "Command batches"): JSON Lines, one tick a line.

Reading checks shape and types only: a known op, exactly its fields, each of
its JSON type and integer width. A well-typed value outside a rule's range
(dx 2, amount -3, an empty text) is the reducers' business: they reject it
with a reason code (GAME_RULES.md "Field types"), so it is not bad input here.
"""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Annotated, Any, Callable, Iterable, Iterator, Union

import msgspec
import numpy as np

from schema._generated.layout import COMMAND_DTYPE, ENTITY_DTYPE, TRANSIT_DTYPE, Kind, Op, TransitKind
from vocabulary.errors import InputError
from vocabulary.records import COMMAND, pack_commands
from vocabulary.types import Batch, WorldData

from .jsoninput import (
    CONTROL,
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
    check_name,
    check_object,
    check_str,
    find_duplicate_key,
    key_count_bound,
    loads,
    path_str,
    quoted,
)

TICK_MAX = 2**62  # the world file's tick range (docs/rules.md "Value ranges")

# Each op's own fields, in the order a command's JSON object lists them.
OP_FIELDS: dict[str, tuple[str, ...]] = {
    "join": ("zone", "name"), "leave": (), "move": ("dx", "dy"), "attack": ("target",),
    "pickup": ("item",), "use": (), "transfer": ("to", "amount"), "say": ("text",), "travel": ("zone",),
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


MAX_TICK_GAP = 100_000     # ticks a batches file may skip (docs/rules.md, "Batches")


def read_batches(path: str | os.PathLike[str], *, after_tick: int) -> Iterator[Batch]:
    """Stream the batches of a JSON Lines file, checking each line as it is read.

    Ticks must be strictly increasing and above `after_tick` (the world's
    tick); gaps of up to MAX_TICK_GAP ticks are allowed. Blank lines are skipped. Raises InputError naming
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
            batch = _fast_line(raw)
            if batch is None or batch[0] <= previous[0]:
                try:
                    tick, commands = parse_batch_line(raw, previous)
                except Bad as bad:
                    raise InputError(bad.message, file=file, line=line_no, field=path_str(bad.path) or None) from None
                batch = (tick, *pack_commands(commands))
            tick, packed, text = batch
            if tick - previous[0] > MAX_TICK_GAP:
                after = f"the previous batch's tick {previous[0]} (line {previous[1]})" if previous[1] \
                    else f"the world's tick {previous[0]}"
                raise InputError(f"tick {tick} is {tick - previous[0]:,} ticks after {after}; every tick in "
                                 f"between would run, and a gap is at most {MAX_TICK_GAP:,}",
                                 file=file, line=line_no, field="tick")
            yield Batch(tick=tick, commands=packed, text=text, source=f"{file}:{line_no}")
            previous = (tick, line_no)


# -- The fast path: msgspec reads and type-checks a whole line in C ------------------
#
# Each op is a Struct of exactly its fields with the same integer ranges as the
# checked path. A line the fast path refuses, or cannot vouch for (a repeated
# key: msgspec keeps the last; an integer past what the Struct bounds can say),
# goes through the checked path, which names the problem or accepts the line:
# the fast path never accepts what the checked path would refuse.

_Player = Annotated[int, msgspec.Meta(ge=1, le=2**62 - 1)]
_Seq = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
_Id = Annotated[int, msgspec.Meta(ge=1)]                 # at most U64_MAX: packing refuses more
_I64 = Annotated[int, msgspec.Meta(ge=I64_MIN, le=I64_MAX)]
_U32 = Annotated[int, msgspec.Meta(ge=0, le=U32_MAX)]


class _Command(msgspec.Struct, tag_field="op", forbid_unknown_fields=True):
    player: _Player
    seq: _Seq


class _Join(_Command, tag="join"):
    zone: _U32
    name: str


class _Leave(_Command, tag="leave"):
    pass


class _Move(_Command, tag="move"):
    dx: _I64
    dy: _I64


class _Attack(_Command, tag="attack"):
    target: _Id


class _Pickup(_Command, tag="pickup"):
    item: _Id


class _Use(_Command, tag="use"):
    pass


class _Transfer(_Command, tag="transfer"):
    to: _Id
    amount: _I64


class _Say(_Command, tag="say"):
    text: str


class _Travel(_Command, tag="travel"):
    zone: _U32


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    tick: Annotated[int, msgspec.Meta(ge=0, le=TICK_MAX)]
    commands: list[Union[_Join, _Leave, _Move, _Attack, _Pickup, _Use, _Transfer, _Say, _Travel]]


_LINE = msgspec.json.Decoder(_Line)
_PACK = COMMAND.pack_into
_MOVE, _ATTACK, _PICKUP, _TRANSFER = int(Op.move), int(Op.attack), int(Op.pickup), int(Op.transfer)
_LEAVE, _USE, _JOIN, _SAY, _TRAVEL = int(Op.leave), int(Op.use), int(Op.join), int(Op.say), int(Op.travel)
# Each op without a text packs itself at (buffer, offset, text offset): fields as pack_commands places them.
_PACKERS: dict[type, Callable[[bytearray, int, int, Any], None]] = {
    _Move: lambda b, at, t, c: _PACK(b, at, c.player, c.seq, 0, c.dx, c.dy, 0, 0, t, 0, _MOVE),
    _Attack: lambda b, at, t, c: _PACK(b, at, c.player, c.seq, c.target, 0, 0, 0, 0, t, 0, _ATTACK),
    _Pickup: lambda b, at, t, c: _PACK(b, at, c.player, c.seq, c.item, 0, 0, 0, 0, t, 0, _PICKUP),
    _Transfer: lambda b, at, t, c: _PACK(b, at, c.player, c.seq, c.to, 0, 0, c.amount, 0, t, 0, _TRANSFER),
    _Leave: lambda b, at, t, c: _PACK(b, at, c.player, c.seq, 0, 0, 0, 0, 0, t, 0, _LEAVE),
    _Use: lambda b, at, t, c: _PACK(b, at, c.player, c.seq, 0, 0, 0, 0, 0, t, 0, _USE),
    _Travel: lambda b, at, t, c: _PACK(b, at, c.player, c.seq, 0, 0, 0, 0, c.zone, t, 0, _TRAVEL),
}
_KEYS = {cls: len(msgspec.structs.fields(cls)) + 1 for cls in (*_PACKERS, _Join, _Say)}   # its fields and the op
_SPACED_COLON = re.compile(rb'"[ \t\n\r]+:')


def _fast_line(raw: bytes) -> tuple[int, bytes, bytes] | None:
    """(tick, packed commands, text) of a line the fast path vouches for, else None."""
    try:
        doc = _LINE.decode(raw)
    except msgspec.MsgspecError:
        return None
    commands = doc.commands
    kinds = list(map(type, commands))
    # Every key is a string and a colon: as many as the structs hold means none was repeated.
    if raw.count(b'":') + len(_SPACED_COLON.findall(raw)) != 2 + sum(map(_KEYS.__getitem__, kinds)):
        return None
    size = COMMAND.size
    packed = bytearray(size * len(commands))
    text = bytearray()
    packers = _PACKERS
    try:
        for i, (c, kind) in enumerate(zip(commands, kinds)):
            packer = packers.get(kind)
            if packer is not None:
                packer(packed, i * size, len(text), c)
                continue
            if isinstance(c, _Join):
                if CONTROL.search(c.name):
                    return None     # the slow path names the problem
                blob, zone, op = c.name.encode(), c.zone, _JOIN
            else:
                assert isinstance(c, _Say)
                blob, zone, op = c.text.encode(), 0, _SAY
            _PACK(packed, i * size, c.player, c.seq, 0, 0, 0, 0, zone, len(text), len(blob), op)
            text += blob
    except (struct.error, UnicodeEncodeError):
        return None
    return doc.tick, bytes(packed), bytes(text)


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
            raise Bad(dup, f"field {quoted(str(dup[-1]))} appears more than once")
    return tick, commands


def check_command(at: Path, c: Any) -> None:
    """One command object: a known op, exactly its fields, each well typed."""
    op = _COMMANDS.check(at, c)
    for name in _STRINGS[op]:
        if name == "name":
            check_name(at + (name,), c[name], None)
        else:
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
        self._seq: dict[int, int] = {}      # player -> its highest seq so far
        self._where: dict[int, str] = {}    # player -> where that seq was

    @classmethod
    def for_world(cls, world: WorldData) -> SeqGuard:
        """Players' last_seq in `world`, travellers in flight included."""
        transit = np.frombuffer(world.transit, dtype=TRANSIT_DTYPE)
        travellers = transit["record"][transit["kind"] == TransitKind.traveller].tobytes()
        records = np.frombuffer(world.entities + travellers, dtype=ENTITY_DTYPE)
        players = records[records["kind"] == Kind.player]
        return cls(dict(zip(players["id"].tolist(), players["last_seq"].tolist())).get)

    def check(self, batch: Batch) -> None:
        """Raise InputError at the first stale or repeated seq in `batch`; else remember its seqs.

        Vectorised: by player, seqs must rise along the batch, the first above the player's
        last; only a batch where that fails is gone through command by command, for the message."""
        file, _, line = batch.source.rpartition(":")
        if not line.isdigit():
            file, line = batch.source, ""
        records = np.frombuffer(batch.commands, dtype=COMMAND_DTYPE)
        order = np.argsort(records["player"], kind="stable")
        players, seqs = records["player"][order], records["seq"][order]
        if len(order):
            starts = np.flatnonzero(np.r_[True, players[1:] != players[:-1]])
            lasts = np.r_[starts[1:], len(order)] - 1
            firsts = players[starts].tolist()
            befores = list(map(self._seq.get, firsts))
            for i in [i for i, before in enumerate(befores) if before is None]:
                befores[i] = self._world_last_seq(firsts[i]) or 0
            rising = bool((seqs[1:] > seqs[:-1])[np.diff(players) == 0].all())
            if rising and bool((seqs[starts] > np.array(befores, dtype=np.uint64)).all()):
                self._seq.update(zip(firsts, seqs[lasts].tolist()))
                where = f"line {line}" if line else batch.source or "an earlier batch"
                self._where.update(dict.fromkeys(firsts, where))
                return
        self._check_one_by_one(batch, file, line)

    def _check_one_by_one(self, batch: Batch, file: str, line: str) -> None:
        pending: dict[int, tuple[int, str]] = {}
        for i, (player, seq) in enumerate((c[0], c[1]) for c in COMMAND.iter_unpack(batch.commands)):
            before = pending.get(player)
            if before is None and player in self._seq:
                before = (self._seq[player], self._where[player])
            if before is None:
                world_seq = self._world_last_seq(player)
                before = None if world_seq is None else (world_seq, "its last_seq in the world")
            if before is not None and seq <= before[0]:
                raise InputError(f"seq {seq} is not above player {player}'s last seq {before[0]} ({before[1]})",
                                 file=file or None, line=int(line) if line else None, field=f"commands[{i}].seq")
            pending[player] = (seq, f"commands[{i}] on this line")
        where = f"line {line}" if line else batch.source or "an earlier batch"
        self._seq.update((p, seq) for p, (seq, _) in pending.items())
        self._where.update(dict.fromkeys(pending, where))
