"""PresenceSync: the world ends with each player's last presence, one command in flight at a time."""

from __future__ import annotations

from pipeline.view import WorldView
from pipeline.xmpp.presence import PresenceSync
from tests.support import player, world
from vocabulary.records import pack_commands
from vocabulary.types import Batch

OFFLINE = WorldView.from_world(world(player(1, online=0), next_id=10))
ONLINE = WorldView.from_world(world(player(1, online=1), next_id=10))


def carried(seq: int) -> Batch:
    return Batch(1, *pack_commands([{"player": 1, "seq": seq, "op": "use"}]))


def test_a_storm_sends_one_command_at_a_time_and_ends_with_the_last_presence():
    sent: list[tuple[int, bool]] = []
    sync = PresenceSync(lambda entity, online: sent.append((entity, online)) or len(sent))
    for online in (True, False, True, False, True):      # a storm within one tick
        sync.want(1, online, OFFLINE)
    assert sent == [(1, True)]                          # one in flight; the rest waits for its tick
    sync.on_tick(ONLINE, carried(1))                    # the join committed: online, as last wanted
    assert sent == [(1, True)]
    sync.want(1, False, ONLINE)
    assert sent == [(1, True), (1, False)]


def test_a_refused_presence_command_is_swallowed_and_sent_again():
    sent: list[tuple[int, bool]] = []
    sync = PresenceSync(lambda entity, online: sent.append((entity, online)) or len(sent))
    sync.want(1, True, OFFLINE)
    assert sync.on_refused(1, 1)                        # rate limited: ours, not the player's news
    assert not sync.on_refused(1, 99)                   # a command the player sent: the player's news
    sync.on_tick(OFFLINE, Batch(1, b"", b""))
    assert sent == [(1, True), (1, True)]
    sync.on_tick(ONLINE, carried(2))
    sync.on_tick(ONLINE, Batch(2, b"", b""))
    assert sent == [(1, True), (1, True)]               # settled
