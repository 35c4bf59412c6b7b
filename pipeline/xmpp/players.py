"""Which player entity each JID commands: the accounts table, remembered, never an id the world used.

An account (`player_account`, persistence/store.py) maps a bare JID to the
entity it commands. New accounts get ids ID_GAP above the world's next_id,
so the world's own new entities (gold drops) do not reach them first; and
an account whose id the world handed to something else before the player
ever joined (there now, or gone since) is given a fresh one, since ids are
never used twice.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from schema._generated.layout import ENTITY_DTYPE, Kind

from ..view import WorldView

ID_GAP = 100        # new accounts start this far above next_id: ids the world may create meanwhile
_KIND = int(dict(ENTITY_DTYPE.fields or {})["kind"][1])     # the kind byte's offset in an entity record


class Accounts(Protocol):
    async def accounts(self) -> dict[str, int]: ...
    async def account(self, jid: str) -> int | None: ...
    async def allocate_account(self, jid: str, at_least: int) -> int: ...


class Players:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.entity: dict[str, int] = {}        # bare JID -> entity, once looked up
        self.jid: dict[int, str] = {}           # entity -> bare JID, once looked up
        self._lookups: dict[str, asyncio.Future[int]] = {}     # jid -> its lookup under way

    def know(self, jid: str, entity: int) -> None:
        """An account read in bulk (the probe): remembered unless a lookup already said otherwise."""
        self.entity.setdefault(jid, entity)
        self.jid.setdefault(entity, jid)

    async def lookup(self, jid: str, view: WorldView) -> int:
        """The player `jid` commands. One already known comes back without a wait (so presences
        keep their order); lookups of one JID at once (a chat client's subscribe and presence
        arrive together) share one, or each would allocate it an id."""
        entity = self.entity.get(jid)
        if entity is not None and _usable(entity, view):
            return entity
        pending = self._lookups.get(jid)
        if pending is None:
            pending = self._lookups[jid] = asyncio.ensure_future(self._look_up(jid, view))
            pending.add_done_callback(lambda _: self._lookups.pop(jid, None))
        return await asyncio.shield(pending)

    async def _look_up(self, jid: str, view: WorldView) -> int:
        entity = self.entity.get(jid) or await self.accounts.account(jid)
        if entity is None or not _usable(entity, view):
            entity = await self.accounts.allocate_account(jid, view.next_id + ID_GAP)
        self.entity[jid], self.jid[entity] = entity, jid
        return entity


def _usable(entity: int, view: WorldView) -> bool:
    """The account's entity is a player, or an id the world has not reached yet."""
    record = view.get(entity)
    return record[_KIND] == Kind.player if record is not None else entity >= view.next_id
