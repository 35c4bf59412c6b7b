"""`fluxworld player add NAME`: a Prosody account on the private server and its player entity.

pipeline/__main__.py registers COMMANDS. The account is made with
prosodyctl whether or not `serve` runs; the JID's entity id is allocated in
PostgreSQL at once, so it is known before the player first logs in.
"""

from __future__ import annotations

import asyncio
import secrets
import sys

import click

from ..errors import FluxworldError


@click.group("player")
def player_group() -> None:
    """Player accounts on the private Prosody."""


@player_group.command("add")
@click.argument("name")
@click.option("--password", help="The account's password (default: a generated one, printed).")
@click.option("--db", default="embedded", show_default=True, envvar="FLUXWORLD_DB",
              help="'embedded' or a postgresql:// DSN: where the JID -> entity mapping is kept.")
def player_add(name: str, password: str | None, db: str) -> None:
    """Create NAME@fluxworld.localhost and the player entity it commands."""
    from .prosody import ProsodyServer

    password = password or secrets.token_urlsafe(9)
    try:
        jid = ProsodyServer().create_account(name, password)
        entity = asyncio.run(_map(db, jid))
    except FluxworldError as exc:
        click.echo(f"fluxworld: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{jid} password {password} entity {entity}")


async def _map(db: str, jid: str) -> int:
    from persistence.database import open_database
    from persistence.migrator import migrate

    from .component import ID_GAP

    async with open_database(db, pool_max=1) as database:
        await migrate(database.dsn)
        store = database.store()
        existing = await store.account(jid)
        if existing is not None:
            return existing
        next_id = (await store.load_world()).next_id if await store.stored_hash() else 0
        return await store.allocate_account(jid, next_id + ID_GAP)


COMMANDS = (player_group,)
