"""`fluxworld player add NAME` and `fluxworld gateway`.

pipeline/__main__.py registers COMMANDS. `player add` makes the account
with prosodyctl whether or not `serve` runs; the JID's entity id is
allocated in PostgreSQL at once, so it is known before the player first
logs in. `gateway` runs the XMPP gateway process (gateway.py), which
`serve` starts by itself; run it by hand to put one beside a running world.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from pathlib import Path

import click

from vocabulary.errors import FluxworldError

from ..link.router import ShardLink, parse_world
from . import DEFAULT_COMPONENT, Endpoint


def host_port(value: str, option: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint=option)
    return host, int(port)


@click.group("player")
def player_group() -> None:
    """Player accounts on the private Prosody."""


@player_group.command("add")
@click.argument("name")
@click.option("--password", help="The account's password (default: a generated one, printed).")
@click.option("--reset-password", is_flag=True, help="The account exists: give it a new password.")
@click.option("--db", default="embedded", show_default=True, envvar="FLUXWORLD_DB",
              help="'embedded' or a postgresql:// DSN: where the JID -> entity mapping is kept.")
def player_add(name: str, password: str | None, reset_password: bool, db: str) -> None:
    """Create NAME@fluxworld.localhost and the player entity it commands."""
    from .prosody import ProsodyServer

    password = password or secrets.token_urlsafe(9)
    server = ProsodyServer()
    if server.account_exists(name) and not reset_password:
        click.echo(f"fluxworld: {name}@{server.domain} already has an account; to give it a new password, "
                   "add --reset-password", err=True)
        sys.exit(1)
    try:
        jid = server.create_account(name, password)
        entity = asyncio.run(_map(db, jid))
    except FluxworldError as exc:
        click.echo(f"fluxworld: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{jid} password {password} entity {entity}")


async def _map(db: str, jid: str) -> int:
    from persistence.database import open_database
    from persistence.migrator import migrate

    from .players import ID_GAP

    async with open_database(db, pool_max=1) as database:
        await migrate(database.dsn)
        store = database.store()
        existing = await store.account(jid)
        if existing is not None:
            return existing
        next_id = (await store.load_world()).next_id if await store.stored_hash() else 0
        return await store.allocate_account(jid, max(next_id, await _shards_next_id(database.dsn)) + ID_GAP)


async def _shards_next_id(dsn: str) -> int:
    """The largest next_id of the world's zone groups (0 when it is not split): each shard's joins
    move its own, and the world's stored one stays where the split left it."""
    from persistence.database import open_database
    from persistence.shards import groups, sibling_dsn

    largest = 0
    for group in await groups(dsn):
        async with open_database(sibling_dsn(dsn, group.database), pool_max=1) as database:
            store = database.store()
            if await store.stored_hash():
                largest = max(largest, (await store.load_world()).next_id)
    return largest


@click.command("gateway")
@click.option("--world", "worlds", metavar="[ZONES=]PATH", multiple=True, required=True,
              help="The world server's link socket (serve logs where it listens); for a world split into zone "
                   "groups, each shard's as ZONES=PATH (`--world 1=z1.sock --world 2,3=z2.sock`, the zones "
                   "the shard serves with --zones), once per shard.")
@click.option("--xmpp-server", metavar="HOST:PORT", required=True, help="The XMPP server's component port.")
@click.option("--component", default=DEFAULT_COMPONENT, show_default=True, help="The component's JID.")
@click.option("--secret-file", type=click.Path(path_type=Path, dir_okay=False),
              help="File holding the component's secret (default: $FLUXWORLD_XMPP_SECRET).")
@click.option("--db", default="embedded", show_default=True, envvar="FLUXWORLD_DB",
              help="Where JID -> entity accounts are kept: the world's database.")
@click.option("--bot-hz", type=click.FloatRange(min=0.01), default=None,
              help="How often players that send payloads hear from the world (default: 10 a second).")
@click.option("--players-domain", default=None, metavar="DOMAIN",
              help="Answer for the accounts of this XMPP domain only: one of several gateways on one world, each "
                   "on its own XMPP server (default: every account).")
@click.option("--parent", type=int, default=None, help="Exit when the process with this pid is gone.")
def gateway(worlds: tuple[str, ...], xmpp_server: str, component: str, secret_file: Path | None, db: str,
            bot_hz: float | None, players_domain: str | None, parent: int | None) -> None:
    """Run an XMPP gateway: players' stanzas to the world's link, the world's ticks to players."""
    from .gateway import SECRET_ENV, run_gateway

    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("pipeline").setLevel(logging.INFO)
    host, port = host_port(xmpp_server, "--xmpp-server")
    world = world_links(worlds)
    secret = os.environ.get(SECRET_ENV)
    if secret_file is not None:
        try:
            secret = secret_file.read_text().strip()
        except OSError as e:
            raise click.BadParameter(f"cannot read it: {e}", param_hint="--secret-file")
    if not secret:
        raise click.UsageError(f"the component's secret: give --secret-file or set {SECRET_ENV}")
    asyncio.run(run_gateway(Endpoint(host, port, component, secret), world, db, parent=parent,
                            bot_hz=bot_hz, players_domain=players_domain))


def world_links(values: tuple[str, ...]) -> Path | list[ShardLink]:
    """--world given once as PATH (one world server), or as ZONES=PATH once per shard."""
    parsed = [parse_world(v) for v in values]
    paths = [p for p in parsed if isinstance(p, Path)]
    shards = [s for s in parsed if isinstance(s, ShardLink)]
    if paths and (shards or len(paths) > 1):
        raise click.BadParameter("give one world server's socket, PATH, or each shard's as ZONES=PATH "
                                 f"(e.g. 1,2=/run/z1.sock), got {' '.join(values)}", param_hint="--world")
    if paths:
        return paths[0]
    zones = [z for s in shards for z in s.zones]
    if len(zones) != len(set(zones)):
        raise click.BadParameter("each zone belongs to one shard, but some --world names a zone twice: "
                                 + " ".join(values), param_hint="--world")
    return shards


COMMANDS = (player_group, gateway)
