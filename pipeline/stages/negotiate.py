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
   refilled at `rate` a second (trusted input, a recorded batch, has none).
Accepted commands form the batch in arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..batches import check_command
from ..context import TickContext
from ..jsoninput import Bad, path_str
from ..records import pack_commands
from ..types import Batch, Incoming, Refusal, Unreadable

DEFAULT_RATE = 20.0   # commands a second: one a tick at 20 Hz
DEFAULT_BURST = 10
MAX_TEXT_BYTES = 1024


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class Negotiate:
    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    _buckets: dict[int, _Bucket] = field(default_factory=dict)

    async def __call__(self, ctx: TickContext) -> TickContext:
        accepted: list[dict[str, Any]] = []
        last_seq: dict[int, int] = {}
        for incoming in ctx.incoming:
            reason = self._check(ctx, incoming, last_seq)
            if reason is None:
                command = incoming.command
                last_seq[command["player"]] = command["seq"]
                accepted.append(command)
            else:
                ctx.refusals.append(Refusal(incoming, reason))
        commands, text = pack_commands(accepted)
        ctx.batch = Batch(ctx.tick, commands, text, source=f"tick {ctx.tick}")
        return ctx

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
        if incoming.sender is not None and not self._take_token(player, incoming.received):
            return f"rate limited: at most {self.burst} commands at once, {self.rate:g} a second"
        return None

    def _take_token(self, player: int, now: float) -> bool:
        bucket = self._buckets.get(player)
        if bucket is None:
            bucket = self._buckets[player] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
