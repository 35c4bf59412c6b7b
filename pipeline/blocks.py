"""Blocks of packed commands: what negotiate checks in a CommandBlock, vectorised.

A CommandBlock carries Command structs as the reducers read them, so the
checks that a command dict gets from its JSON shape (pipeline/formats/batches.py:
a known op, exactly its fields, every value in range) are made here on the
record's columns instead: a field the op does not have must be zero, a text
must lie inside the block's text, be UTF-8 and be at most MAX_TEXT_BYTES.
Only the failing commands cost Python time; the rest is numpy over columns.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from schema._generated.layout import COMMAND_DTYPE, COMMAND_SIZE, Op
from vocabulary.types import Batch, CommandBlock

from .formats.batches import OP_FIELDS, batch_commands_json

MAX_TEXT_BYTES = 1024
PLAYER_MAX, SEQ_MAX = 2**62 - 1, 2**62      # as for command dicts (pipeline/formats/batches.py)
# How far a player's next seq may leap: at most SEQ_STEP_MAX above its last seq or
# above the wall clock in microseconds since the epoch, whichever is higher. Clients
# counting in ones or stamping seqs with the time (in seconds, ms or µs) never meet
# it; one that leaps would need 2^30 commands (17 years at 2 a second) to reach
# SEQ_MAX and have no seq left.
SEQ_STEP_MAX = 2**32


def wall_microseconds() -> int:
    return time.time_ns() // 1000


def seq_ceiling(last: int, now_us: int) -> int:
    """The highest seq a player whose last seq is `last` may send now."""
    return min(SEQ_MAX, max(last, now_us) + SEQ_STEP_MAX)
SENDER_SIZE = 8                             # a sender id: little-endian u64
# Which Command column each op's JSON field lands in (records.TARGET_KEYS).
_COLUMN = {"zone": "zone", "dx": "dx", "dy": "dy", "target": "target", "item": "target", "to": "target",
           "amount": "amount", "name": "text_len", "text": "text_len"}
_OPTIONAL = ("target", "dx", "dy", "amount", "zone", "text_len")


def make_block(records: np.ndarray[Any, Any], text: bytes, senders: np.ndarray[Any, Any],
               received: float) -> CommandBlock:
    """A block from a COMMAND_DTYPE array and one sender id per command."""
    assert records.dtype == COMMAND_DTYPE and len(senders) == len(records)
    return CommandBlock(records.tobytes(), text, senders.astype("<u8").tobytes(), received)


def block_records(block: CommandBlock) -> np.ndarray[Any, Any]:
    return np.frombuffer(block.commands, dtype=COMMAND_DTYPE)


def block_senders(block: CommandBlock) -> np.ndarray[Any, Any]:
    return np.frombuffer(block.senders, dtype="<u8")


def block_problems(block: CommandBlock) -> dict[int, str]:
    """Index -> refusal reason, for each command of `block` that is malformed,
    too large, or not the sender's own (the first three of negotiate's checks)."""
    if len(block.commands) % COMMAND_SIZE or len(block.senders) != SENDER_SIZE * len(block):
        raise ValueError(f"a CommandBlock of {len(block.commands)} command bytes and {len(block.senders)} "
                         "sender bytes: not whole Command structs with one sender each")
    records = block_records(block)
    senders = block_senders(block)
    problems: dict[int, str] = {}

    def refuse(mask: np.ndarray[Any, Any], reason: Any) -> None:
        for i in np.flatnonzero(mask).tolist():
            problems.setdefault(i, reason(i) if callable(reason) else reason)

    op = records["op"]
    refuse(op > max(Op), lambda i: f"malformed: unknown op {op[i]}")
    for code, fields in ((o.value, OP_FIELDS[o.name]) for o in Op):
        mine = op == code
        own = {_COLUMN[f] for f in fields}
        for column in _OPTIONAL:
            if column not in own:
                field = "text" if column == "text_len" else column
                refuse(mine & (records[column] != 0),
                       f"malformed: a {Op(code).name} command has no {field}")
        if "target" in own:
            refuse(mine & (records["target"] == 0), f"malformed: {fields[0]} must be at least 1")
    refuse((records["player"] == 0) | (records["player"] > PLAYER_MAX),
           f"malformed: player must be in 1..{PLAYER_MAX}")
    refuse((records["seq"] == 0) | (records["seq"] > SEQ_MAX), f"malformed: seq must be in 1..{SEQ_MAX}")
    text_end = records["text_offset"].astype(np.int64) + records["text_len"]
    refuse(text_end > len(block.text), "malformed: the text lies outside the block's text")
    refuse(records["text_len"] > MAX_TEXT_BYTES,
           lambda i: f"too large: text is {records['text_len'][i]} bytes, at most {MAX_TEXT_BYTES}")
    for i in np.flatnonzero(records["text_len"]).tolist():
        if i not in problems:
            start = int(records["text_offset"][i])
            try:
                block.text[start:start + int(records["text_len"][i])].decode()
            except UnicodeDecodeError:
                problems[i] = "malformed: text is not UTF-8"
    refuse((senders != 0) & (records["player"] != senders),
           lambda i: f"not allowed: player {records['player'][i]} is not your entity ({senders[i]})")
    return problems


def block_command(block: CommandBlock, index: int) -> dict[str, Any] | None:
    """Command `index` of the block as a FORMATS.md dict (for answering a refusal),
    or None when it cannot be one (an unknown op, a text outside the block)."""
    record = block_records(block)[index:index + 1]
    try:
        return batch_commands_json(Batch(0, record.tobytes(), block.text))[0]
    except (KeyError, UnicodeDecodeError):
        return None


def merge(blocks: list[CommandBlock]) -> CommandBlock:
    """One block holding the commands of `blocks` in order: a tick's many small blocks
    (a gateway sends one per burst of stanzas) are checked at once, not block by block."""
    if len(blocks) == 1:
        return blocks[0]
    records = np.frombuffer(bytearray(b"".join(b.commands for b in blocks)), dtype=COMMAND_DTYPE)   # padding kept
    shift, at = np.zeros(len(records), dtype=np.uint32), 0
    text_before = 0
    for b in blocks:
        shift[at:at + len(b)] = text_before
        at += len(b)
        text_before += len(b.text)
    records["text_offset"] += shift
    return CommandBlock(records.tobytes(), b"".join(b.text for b in blocks), b"".join(b.senders for b in blocks),
                        blocks[-1].received)


def select(block: CommandBlock, keep: np.ndarray[Any, Any]) -> tuple[bytes, bytes]:
    """(packed commands, text) of the kept commands, their texts packed anew in order."""
    if keep.all():
        return block.commands, block.text
    # Rows are copied as bytes: numpy copies a structured array field by field,
    # which would leave the struct's padding bytes uninitialised.
    rows = np.frombuffer(block.commands, dtype=np.uint8).reshape(-1, COMMAND_SIZE)[keep]
    chosen = rows.reshape(-1).view(COMMAND_DTYPE)
    if not chosen["text_len"].any():
        chosen["text_offset"] = 0
        return chosen.tobytes(), b""
    text = bytearray()
    for i in range(len(chosen)):
        start, length = int(chosen["text_offset"][i]), int(chosen["text_len"][i])
        chosen["text_offset"][i] = len(text)
        text += block.text[start:start + length]
    return chosen.tobytes(), bytes(text)
