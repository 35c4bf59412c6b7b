"""Stage 1, negotiate: from what players sent to the tick's batch.

Each incoming command is checked in this order, and the first failure is a
refusal answered at once, never entering the batch or the command log
(GAME_RULES.md: malformed or not allowed):
1. well-formed: a command the transport could read (not `Unreadable`), a
   known op with exactly its fields, well typed (the same check as batch
   files, pipeline/formats/batches.py), and no string over MAX_TEXT_BYTES (the rules
   reject a say text over 200 bytes as `bad_text`; far larger ones are not
   worth a tick);
2. authorised: `player` is the sender's own entity;
3. in order: `seq` above the player's last accepted seq (a duplicate or a
   replay of an old command is refused) and, from a sender, no higher than
   `seq_ceiling` (pipeline/blocks.py), so no client can use up its seq space;
4. within the player's rate limit: a token bucket of `burst` commands
   refilled at `rate` a second (trusted input, a recorded batch, has none;
   `rate=None` turns the limit off).
Accepted commands form the batch in arrival order.

A CommandBlock (many packed commands from an in-process source) gets the
same checks: the first two vectorised (pipeline/blocks.py), the last two
player by player: a player whose commands in the block rise in seq takes as
many at once as its tokens allow; any other goes command by command, since a
refusal must not advance a player's seq.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from schema._generated.layout import COMMAND_DTYPE
from vocabulary.records import pack_commands
from vocabulary.types import Batch, CommandBlock, Incoming, Refusal, Unreadable

from ..blocks import (
    MAX_TEXT_BYTES,
    SEQ_STEP_MAX,
    block_command,
    block_problems,
    block_records,
    block_senders,
    merge,
    select,
    seq_ceiling,
    wall_microseconds,
)
from ..context import TickContext
from ..formats.batches import check_command
from ..formats.jsoninput import Bad, path_str

DEFAULT_RATE = 20.0   # commands a second: one a tick at 20 Hz
DEFAULT_BURST = 10
_TEXT_FIELD = {"join": "name", "say": "text"}


class _Accepted:
    """The batch being built: runs of command dicts and of packed block commands, in arrival order."""

    def __init__(self) -> None:
        self.parts: list[tuple[bytes, bytes]] = []
        self.dicts: list[dict[str, Any]] = []

    def add_packed(self, commands: bytes, text: bytes) -> None:
        self._flush()
        self.parts.append((commands, text))

    def _flush(self) -> None:
        if self.dicts:
            self.parts.append(pack_commands(self.dicts))
            self.dicts = []

    def batch(self) -> tuple[bytes, bytes]:
        """One packed batch; text offsets move by the text before each part (as pack_commands counts them)."""
        self._flush()
        if len(self.parts) == 1:
            return self.parts[0]
        commands, text = [], bytearray()
        for packed, part_text in self.parts:
            records = np.frombuffer(bytearray(packed), dtype=COMMAND_DTYPE)   # a byte copy, padding included
            records["text_offset"] += len(text)
            commands.append(records.tobytes())
            text += part_text
        return b"".join(commands), bytes(text)


@dataclass
class Negotiate:
    rate: float | None = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    clock: Callable[[], int] = wall_microseconds      # the seq ceiling's (tests set their own)

    def __post_init__(self) -> None:
        self._buckets = Buckets(self.rate or 0.0, self.burst)
        self._now_us = 0

    async def __call__(self, ctx: TickContext) -> TickContext:
        accepted = _Accepted()
        self._now_us = self.clock()
        last_seq: dict[int, int] = {}
        for incoming in _merged(ctx.incoming):
            if isinstance(incoming, CommandBlock):
                self._negotiate_block(ctx, incoming, last_seq, accepted)
                continue
            reason = self._check(ctx, incoming, last_seq)
            if reason is None:
                command = incoming.command
                last_seq[command["player"]] = command["seq"]
                accepted.dicts.append(command)
            else:
                ctx.refusals.append(Refusal(incoming, reason))
        commands, text = accepted.batch()
        ctx.batch = Batch(ctx.tick, commands, text, source=f"tick {ctx.tick}")
        return ctx

    def _negotiate_block(self, ctx: TickContext, block: CommandBlock, last_seq: dict[int, int],
                         accepted: _Accepted) -> None:
        """Seq and rate, per player: a player whose commands in the block carry rising seqs above
        its last, all from senders (rate-limited) or all trusted, takes its first `tokens`
        commands at once (numpy, over all such players); any other player's commands go one
        by one, as single commands do."""
        problems = block_problems(block)
        records, senders = block_records(block), block_senders(block)
        keep = np.ones(len(records), dtype=bool)
        keep[list(problems)] = False
        index = np.flatnonzero(keep)
        if len(index):
            order = index[np.argsort(records["player"][index], kind="stable")]    # by player, arrival order within
            players, seqs = records["player"][order], records["seq"][order]
            limited = senders[order] != 0
            new_player = np.r_[True, players[1:] != players[:-1]]
            starts = np.flatnonzero(new_player)
            group = np.cumsum(new_player) - 1
            rising = np.r_[True, seqs[1:] > seqs[:-1]] | new_player
            counts = np.diff(np.r_[starts, len(order)])
            firsts = players[starts].tolist()
            view_last_seq = ctx.view.last_seq
            seen = [last_seq.get(p) for p in firsts]
            previous: list[int] = [(view_last_seq(p) or 0) if s is None else s for p, s in zip(firsts, seen)]
            last = np.array(previous, dtype=np.uint64)
            # Flagged where a leap may be too far (exactly so for a block's rising run of seqs
            # above the clock); the one-by-one path then applies seq_ceiling itself.
            leaps = np.diff(seqs, prepend=np.uint64(0)) > SEQ_STEP_MAX
            floor = np.maximum(last, np.uint64(self._now_us))
            leaps[starts] = seqs[starts] - np.minimum(seqs[starts], floor) > SEQ_STEP_MAX
            # One by one: seqs that fall back within the block, start at or below the last, or leap too far
            # from a sender, and senders mixed with trusted input (only senders are rate- and step-limited).
            slow = ~np.logical_and.reduceat(rising, starts) \
                | (np.logical_or.reduceat(limited, starts) != np.logical_and.reduceat(limited, starts)) \
                | (seqs[starts] <= last) | np.logical_or.reduceat(leaps & limited, starts)
            allowed = counts.copy()
            if self.rate is not None:
                metered = np.flatnonzero(~slow & limited[starts])
                allowed[metered] = self._buckets.take([firsts[g] for g in metered.tolist()], counts[metered],
                                                      block.received)
            for g in np.flatnonzero(slow).tolist():
                first = int(starts[g])
                allowed[g] = self._one_by_one(order[first:first + counts[g]], records, senders, previous[g],
                                              firsts[g], block.received, last_seq, problems)
            took = np.flatnonzero(~slow & (allowed > 0))
            last_seq.update(zip([firsts[g] for g in took.tolist()], seqs[starts[took] + allowed[took] - 1].tolist()))
            over = (np.arange(len(order)) - starts[group] >= allowed[group]) & ~slow[group]
            if over.any():
                problems.update(dict.fromkeys(order[over].tolist(), self._limited()))
        keep[list(problems)] = False
        for i, reason in sorted(problems.items()):
            ctx.refusals.append(Refusal(Incoming(block_command(block, i), int(senders[i]) or None, block.received),
                                        reason))
        if keep.any():
            accepted.add_packed(*select(block, keep))

    def _one_by_one(self, indexes: np.ndarray[Any, Any], records: np.ndarray[Any, Any], senders: np.ndarray[Any, Any],
                    previous: int, player: int, received: float, last_seq: dict[int, int],
                    problems: dict[int, str]) -> int:
        """One player's commands of a block, in arrival order, as single commands go; how many pass."""
        passed = 0
        for i in indexes.tolist():
            seq = int(records["seq"][i])
            if seq <= previous:
                problems[i] = f"out of order: seq {seq} is not above your last seq {previous}"
            elif senders[i] and seq > seq_ceiling(previous, self._now_us):
                problems[i] = _leap(seq, previous)
            elif self.rate is not None and senders[i] and not self._take_token(player, received):
                problems[i] = self._limited()
            else:
                previous = last_seq[player] = seq
                passed += 1
        return passed

    def _check(self, ctx: TickContext, incoming: Incoming, last_seq: dict[int, int]) -> str | None:
        command = incoming.command
        if isinstance(command, Unreadable):
            return f"malformed: {command.reason}"
        try:
            check_command((), command)
        except Bad as bad:
            where = path_str(bad.path)
            return f"malformed: {where + ': ' if where else ''}{bad.message}"
        key = _TEXT_FIELD.get(command["op"])
        if key is not None and len(command[key]) * 4 > MAX_TEXT_BYTES:    # a character is 1..4 bytes
            size = len(command[key].encode())
            if size > MAX_TEXT_BYTES:
                return f"too large: {key} is {size} bytes, at most {MAX_TEXT_BYTES}"
        player, seq = command["player"], command["seq"]
        if incoming.sender is not None and player != incoming.sender:
            return f"not allowed: player {player} is not your entity ({incoming.sender})"
        previous = last_seq.get(player)
        if previous is None:
            previous = ctx.view.last_seq(player) or 0
        if seq <= previous:
            return f"out of order: seq {seq} is not above your last seq {previous}"
        if incoming.sender is not None and seq > seq_ceiling(previous, self._now_us):
            return _leap(seq, previous)
        if self.rate is not None and incoming.sender is not None and not self._take_token(player, incoming.received):
            return self._limited()
        return None

    def _limited(self) -> str:
        return f"rate limited: at most {self.burst} commands at once, {self.rate:g} a second"

    def _take_token(self, player: int, now: float) -> bool:
        return self._buckets.take_one(player, now)


def _merged(incoming: list[Incoming | CommandBlock]) -> list[Incoming | CommandBlock]:
    """The tick's input with each run of consecutive blocks merged into one (arrival order kept)."""
    out: list[Incoming | CommandBlock] = []
    run: list[CommandBlock] = []
    for item in incoming:
        if isinstance(item, CommandBlock):
            run.append(item)
            continue
        if run:
            out.append(merge(run))
            run = []
        out.append(item)
    if run:
        out.append(merge(run))
    return out


class Buckets:
    """Every player's token bucket: `burst` tokens, refilled at `rate` a second, kept in
    numpy columns by a player's place so a block's players take theirs at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._place: dict[int, int] = {}
        self._tokens = np.zeros(1024)
        self._stamps = np.zeros(1024)

    def take(self, players: list[int], wanted: np.ndarray[Any, Any], now: float) -> np.ndarray[Any, Any]:
        """How many of `wanted` tokens each player takes at `now`: the whole ones it has.
        Integers come off a float exactly, so taking k at once is taking one k times."""
        places = [self._place.get(p, -1) for p in players]
        for i in [i for i, place in enumerate(places) if place < 0]:
            places[i] = self._add(players[i], now)
        at = np.array(places, dtype=np.int64)
        tokens = np.minimum(float(self.burst), self._tokens[at] + (now - self._stamps[at]) * self.rate)
        taken: np.ndarray[Any, Any] = np.minimum(wanted, tokens.astype(np.int64))    # tokens never go below 0
        self._tokens[at] = tokens - taken
        self._stamps[at] = now
        return taken

    def take_one(self, player: int, now: float) -> bool:
        """take() for one player and one token, without numpy's per-call cost."""
        place = self._place.get(player)
        if place is None:
            place = self._add(player, now)
        tokens = min(float(self.burst), self._tokens.item(place) + (now - self._stamps.item(place)) * self.rate)
        taken = tokens >= 1.0
        self._tokens[place], self._stamps[place] = tokens - taken, now
        return taken

    def _add(self, player: int, now: float) -> int:
        place = self._place[player] = len(self._place)
        if place == len(self._tokens):
            self._tokens = np.concatenate([self._tokens, np.zeros(place)])
            self._stamps = np.concatenate([self._stamps, np.zeros(place)])
        self._tokens[place], self._stamps[place] = float(self.burst), now
        return place


def _leap(seq: int, previous: int) -> str:
    return (f"out of order: seq {seq} leaps too far: at most {SEQ_STEP_MAX} above your last seq {previous} "
            "or above the time in microseconds since 1970")
