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
command by command, since a refusal must not advance a player's seq.
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
        problems = block_problems(block)
        records = block_records(block)
        keep = np.ones(len(records), dtype=bool)
        limited = self.rate is not None
        view_last_seq = ctx.view.last_seq
        senders = block_senders(block).tolist()
        for i, (player, seq) in enumerate(zip(records["player"].tolist(), records["seq"].tolist())):
            if i in problems:
                keep[i] = False
                continue
            previous = last_seq.get(player)
            if previous is None:
                previous = view_last_seq(player) or 0
            if seq <= previous:
                problems[i] = f"out of order: seq {seq} is not above your last seq {previous}"
            elif limited and senders[i] and not self._take_token(player, block.received):
                problems[i] = self._limited()
            else:
                last_seq[player] = seq
                continue
            keep[i] = False
        for i, reason in sorted(problems.items()):
            sender = senders[i] or None
            command = block_command(block, i)
            ctx.refusals.append(Refusal(Incoming(command, sender, block.received), reason))
        if keep.any():
            accepted.add_packed(*select(block, keep))

    def _check(self, ctx: TickContext, incoming: Incoming, last_seq: dict[int, int]) -> str | None:
        command = incoming.command
        if isinstance(command, Unreadable):
            return f"malformed: {command.reason}"
        try:
            check_command((), command)
        except Bad as bad:
            where = path_str(bad.path)
            return f"malformed: {where + ': ' if where else ''}{bad.message}"
        for key in ("text", "name"):
            size = len(command.get(key, "").encode())
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
        assert self.rate is not None
        bucket = self._buckets.get(player)
        if bucket is None:
            bucket = self._buckets[player] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
