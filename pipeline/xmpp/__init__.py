"""Players over XMPP: the world as an XEP-0114 component of an XMPP server.

    prosody.py    a private Prosody: its config, accounts, start and stop
    protocol.py   text commands and XML payloads <-> command dicts and replies (pure)
    component.py  the server's slixmpp component (the server's only importer of slixmpp): Inbox in, Outbox out
    cli.py        `fluxworld player add` (accounts: persistence WorldStore.account/allocate_account)
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DOMAIN = "fluxworld.localhost"
DEFAULT_COMPONENT = "world.fluxworld.localhost"


@dataclass(frozen=True)
class Endpoint:
    """Where the component connects: an XMPP server's component port and its credentials."""

    host: str
    port: int
    component: str      # the component's JID, e.g. world.fluxworld.localhost
    secret: str
