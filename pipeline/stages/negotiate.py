"""Stage 1, negotiate: from what players sent to the tick's batch.

Each incoming command is checked in this order, and the first failure is a
refusal answered at once, never entering the batch or the command log
(GAME_RULES.md: malformed or not allowed):
1. well-formed: a command the transport could read (not `Unreadable`), a
   known op with exactly its fields, well typed (the same check as batch
   files, pipeline/batches.py), and no string over MAX_TEXT_BYTES (the rules
   reject a say text over 200 bytes as `bad_text`; far larger ones are not
   worth a tick);
2. authorised: `player` is the sender's own entity;
3. in order: `seq` above the player's last accepted seq (a duplicate or a
   replay of an old command is refused);
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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schema._generated.layout import COMMAND_DTYPE

from ..batches import check_command
from ..blocks import MAX_TEXT_BYTES, block_command, block_problems, block_records, block_senders, select
from ..context import TickContext
from ..jsoninput import Bad, path_str
from ..records import pack_commands
from ..types import Batch, CommandBlock, Incoming, Refusal, Unreadable

DEFAULT_RATE = 20.0   # commands a second: one a tick at 20 Hz
DEFAULT_BURST = 10
_TEXT_FIELD = {"join": "name", "say": "text"}


@dataclass
class _Bucket:
    tokens: float
    stamp: float


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
    _buckets: dict[int, _Bucket] = field(default_factory=dict)

    async def __call__(self, ctx: TickContext) -> TickContext:
        accepted = _Accepted()
        last_seq: dict[int, int] = {}
        for incoming in ctx.incoming:
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
        commands at once; any other player's commands go one by one, as single commands do."""
        problems = block_problems(block)
        records, senders = block_records(block), block_senders(block)
        keep = np.ones(len(records), dtype=bool)
        keep[list(problems)] = False
        index = np.flatnonzero(keep)
        order = index[np.argsort(records["player"][index], kind="stable")]    # by player, arrival order within
        players, seqs = records["player"][order], records["seq"][order]
        limited = senders[order] != 0
        starts = np.flatnonzero(np.r_[True, players[1:] != players[:-1]]) if len(order) else np.zeros(0, np.int64)
        group = np.cumsum(np.r_[False, players[1:] != players[:-1]]) if len(order) else np.zeros(0, np.int64)
        rank = np.arange(len(order)) - starts[group]
        rising = np.r_[True, seqs[1:] > seqs[:-1]] if len(order) else np.zeros(0, bool)
        mixed = np.zeros(len(starts), dtype=bool)
        if len(order):
            rising[starts] = True
            mixed = ~np.logical_and.reduceat(rising, starts) | (np.logical_or.reduceat(limited, starts)
                                                              != np.logical_and.reduceat(limited, starts))
        counts = np.diff(np.r_[starts, len(order)])
        allowed = counts.copy()
        slow = mixed.copy()
        view_last_seq = ctx.view.last_seq
        for g, player in enumerate(players[starts].tolist()):
            previous = last_seq.get(player)
            if previous is None:
                previous = view_last_seq(player) or 0
            first = int(starts[g])
            if mixed[g] or int(seqs[first]) <= previous:
                slow[g] = True
                allowed[g] = self._one_by_one(order[first:first + counts[g]], records, senders, previous, player,
                                              block.received, last_seq, problems)
                continue
            if self.rate is not None and limited[first]:
                allowed[g] = self._take_tokens(player, int(counts[g]), block.received)
            if allowed[g]:
                last_seq[player] = int(seqs[first + allowed[g] - 1])
        over = rank >= allowed[group]
        for i in order[over & ~slow[group]].tolist():
            problems[i] = self._limited()
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
        if self.rate is not None and incoming.sender is not None and not self._take_token(player, incoming.received):
            return self._limited()
        return None

    def _limited(self) -> str:
        return f"rate limited: at most {self.burst} commands at once, {self.rate:g} a second"

    def _take_token(self, player: int, now: float) -> bool:
        return self._take_tokens(player, 1, now) == 1

    def _take_tokens(self, player: int, wanted: int, now: float) -> int:
        """Up to `wanted` of the player's tokens at `now`: how many it had (whole ones).
        Integers come off a float exactly, so taking k at once is taking one k times."""
        assert self.rate is not None
        bucket = self._buckets.get(player)
        if bucket is None:
            bucket = self._buckets[player] = _Bucket(float(self.burst), now)
        tokens = bucket.tokens + (now - bucket.stamp) * self.rate
        if tokens > self.burst:
            tokens = float(self.burst)
        taken = int(tokens)                # tokens never go below 0
        if taken > wanted:
            taken = wanted
        bucket.tokens, bucket.stamp = tokens - taken, now
        return taken
