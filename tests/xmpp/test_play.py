"""Players over a REAL Prosody with real slixmpp clients: join, play, leave, and refusals."""

from __future__ import annotations

import asyncio
import logging

from click.testing import CliRunner

from pipeline.__main__ import cli
from pipeline.xmpp.protocol import COMMAND_NS
from tests.support import ZONE, player, world
from tests.xmpp.harness import PASSWORD, Bot, entity, left, world_server
from vocabulary.records import unpack_entity


async def test_a_player_joins_moves_attacks_picks_up_transfers_chats_and_leaves(prosody, fresh_dsn, run_sql):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "alice") as alice, Bot(prosody, "bob") as bob:
        alice.online()
        bob.online()
        _, update, _ = await alice.expect(lambda b, u, r: entity(u, 1) is not None and entity(u, 1)["online"] == "1")
        assert entity(update, 1)["x"] == "10"

        alice.say("move 0 1")      # a plain text command: the server assigns the seq
        await alice.expect(lambda b, u, r: (entity(u, 1) or {}).get("y") == "11")

        alice.say("pickup 5")      # the gold item at 10,11 is where alice now stands
        await alice.expect(lambda b, u, r: (entity(u, 1) or {}).get("gold") == "7")

        alice.say("attack 4")      # the rat came to her
        await alice.expect(lambda b, u, r: (entity(u, 4) or {}).get("hp") in ("0", "1", "2"))

        bob.say("transfer 1 20")
        await alice.expect(lambda b, u, r: (entity(u, 1) or {}).get("gold") == "27")

        bob.say("say hello there")
        body = await alice.expect_body("hello there")
        assert "bob#2: hello there" in body

        alice.offline()
        await bob.expect(lambda b, u, r: 1 in left(u))
    rows = run_sql(fresh_dsn, "SELECT online FROM entity_session WHERE id = 1")
    assert rows[0]["online"] is False


def moved(who: int, x: str):
    return lambda body, update, refused: (entity(update, who) or {}).get("x") == x


async def test_players_see_each_others_moves_when_near_and_not_when_far(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "alice") as alice, Bot(prosody, "bob") as bob, \
            Bot(prosody, "carol") as carol:
        for bot in (alice, bob, carol):
            bot.online()
        await carol.expect(lambda b, u, r: entity(u, 3) is not None)
        bob.say("e")                                  # bob 11,10 -> 12,10, next to alice
        await alice.expect(moved(2, "12"))
        carol.messages.clear()
        alice.command("move", dx=-1, dy=0)            # the structured payload, the bot's own seq
        await bob.expect(moved(1, "9"))
        await asyncio.sleep(0.3)                      # 30 ticks: carol, 40 cells away, heard nothing of it
        assert not any(entity(u, 1) or entity(u, 2) for _, u, _ in carol.messages)


async def test_each_tick_acks_a_players_commands_even_when_nothing_else_happened(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "alice") as alice, Bot(prosody, "carol") as carol:
        alice.online()
        await alice.expect(lambda b, u, r: entity(u, 1) is not None)
        seq = alice.command("move", dx=1, dy=0)
        _, update, _ = await alice.expect(lambda b, u, r: u is not None and u.get("acked") == str(seq))
        assert entity(update, 1)["x"] == "11"

        carol.online()
        await carol.expect(lambda b, u, r: entity(u, 3) is not None)
        seq = carol.command("move", dx=0, dy=0)       # accepted, and changes nothing: carol is alone far away
        body, update, _ = await carol.expect(lambda b, u, r: u is not None and u.get("acked") == str(seq))
        assert len(update) == 0 and not body          # a program's update: the payload alone


async def test_a_player_chooses_how_often_it_hears_and_news_in_between_is_coalesced(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "alice") as alice, Bot(prosody, "bob") as bob:
        alice.online()
        bob.online()
        await alice.expect(lambda b, u, r: entity(u, 2) is not None)
        alice.say("updates 2")                        # at 100 ticks a second: one message every 50 ticks
        await alice.expect_body("updates: every 50 ticks")
        alice.messages.clear()
        for _ in range(6):
            bob.say("e")
            await bob.expect(lambda b, u, r: u is not None and u.get("acked"))
        await asyncio.sleep(0.6)
        seen = [(entity(u, 2) or {}).get("x") for _, u, _ in alice.messages if entity(u, 2)]
        assert len(alice.messages) <= 3 and seen[-1] == "17"  # six moves in 2-3 messages; the last as it stands


async def test_commanding_another_players_entity_is_refused(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "mallory") as mallory:
        mallory.online()
        seq = mallory.command("move", player=1, dx=1, dy=0)
        _, _, refused = await mallory.expect(lambda b, u, r: r is not None)
        assert refused.get("seq") == str(seq) and refused.get("reason").startswith("not allowed: player 1")


async def test_a_flood_is_rate_limited_and_every_refusal_is_answered(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn, rate=5.0, burst=3) as running, Bot(prosody, "dave") as dave:
        dave.online()
        await dave.expect(lambda b, u, r: u is not None)
        for _ in range(20):
            dave.say("use")
        limited = [await dave.expect(lambda b, u, r: (b or "").startswith("refused: rate limited"))
                   for _ in range(10)]
        assert len(limited) == 10
        assert dave.grouped >= 1            # a tick's refusals for one player come in one message
        metrics = running.loop.pipeline.metrics
        assert metrics.commands.labels("refused")._value.get() >= 10


async def test_a_command_a_full_inbox_drops_is_answered_and_counted(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn) as running, Bot(prosody, "dave") as dave:
        dave.online()
        await dave.expect(lambda b, u, r: u is not None)
        inbox = running.inbox
        inbox.limit = 0                         # as full as an overloaded server's
        seq = dave.command("use")
        _, _, refused = await dave.expect(lambda b, u, r: r is not None)
        assert refused.get("seq") == str(seq) and refused.get("reason").startswith("dropped: "), refused.attrib
        assert inbox.dropped == 1


async def test_malformed_input_is_answered_with_the_reason(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "alice") as alice:
        alice.online()
        await alice.expect(lambda b, u, r: u is not None)
        alice.say("fly 3 4")
        assert "unknown command 'fly'" in await alice.expect_body("refused: malformed")
        alice.say("move one 0")
        assert "dx must be a whole number" in await alice.expect_body("refused: malformed")
        alice.command("move", dx="north", dy=0)
        assert "dx must be an integer" in await alice.expect_body("refused: malformed")
        alice.command("teleport")
        assert "op must be one of" in await alice.expect_body("refused: malformed")
        alice.say("x" * 5000)
        assert "too large" in await alice.expect_body("refused: malformed")
        alice.say("say " + "y" * 300)                 # well-formed: the rules reject it
        assert "say rejected: bad_text" in await alice.expect_body("rejected")
        two = f'<command xmlns="{COMMAND_NS}" op="use" seq="7001"/>'
        alice.client.send_raw(f'<message to="{alice.world}" type="chat">{two}{two.replace("7001", "7002")}</message>')
        assert "one command per message; this one has 2" in await alice.expect_body("refused: malformed")
        alice.say("help")
        await alice.expect_body("fluxworld commands")
        alice.say("look")
        assert "you: alice#1" in await alice.expect_body("you:")


async def test_the_component_reconnects_when_the_xmpp_server_restarts_and_ticks_run_on(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn) as running:
        gateway, loop, link = running.gateway, running.loop, running.link
        assert gateway.xmpp_sessions == 1
        await asyncio.to_thread(prosody.stop)
        for _ in range(100):                          # the component notices the drop
            if not gateway.connected.is_set():
                break
            await asyncio.sleep(0.02)
        assert not gateway.connected.is_set()
        tick = loop.view.tick
        await asyncio.sleep(0.3)
        assert loop.view.tick > tick                  # the world did not wait for XMPP
        await asyncio.to_thread(prosody.start)
        await asyncio.wait_for(gateway.connected.wait(), 15)
        for _ in range(100):                          # the next status tells the world (/metrics counts it)
            if link.xmpp_reconnects() == 1:
                break
            await asyncio.sleep(0.05)
        assert gateway.xmpp_sessions == 2 and link.xmpp_reconnects() == 1
        async with Bot(prosody, "alice") as alice:    # and players are served again
            alice.online()
            await alice.expect(lambda b, u, r: entity(u, 1) is not None)
            alice.say("move 1 0")
            await alice.expect(lambda b, u, r: (entity(u, 1) or {}).get("x") == "11")


async def test_player_add_makes_an_account_that_logs_in_and_plays(prosody, fresh_dsn):
    added = await asyncio.to_thread(CliRunner().invoke, cli,
                                    ["player", "add", "erin", "--password", PASSWORD, "--db", fresh_dsn])
    assert added.exit_code == 0, added.output
    jid, _, _, _, entity_id = added.stdout.split()          # "JID password P entity N"
    assert jid == f"erin@{prosody.domain}"
    again = await asyncio.to_thread(CliRunner().invoke, cli, ["player", "add", "erin", "--db", fresh_dsn])
    assert again.exit_code == 1 and "already has an account" in again.output and "--reset-password" in again.output
    reset = await asyncio.to_thread(CliRunner().invoke, cli, ["player", "add", "erin", "--password", PASSWORD,
                                                              "--reset-password", "--db", fresh_dsn])
    assert reset.exit_code == 0 and reset.stdout.split()[4] == entity_id, reset.output
    async with world_server(prosody, fresh_dsn), Bot(prosody, "erin") as erin:
        erin.online()
        await erin.expect(lambda b, u, r: entity(u, int(entity_id)) is not None)
        erin.say("say it works")
        assert "it works" in await erin.expect_body("it works")


def test_serve_connects_to_an_existing_xmpp_server(prosody, fresh_dsn, tmp_path, caplog):
    """--xmpp-server/--component/--secret-file: the session's Prosody stands in for one we did not start."""
    secret = tmp_path / "secret"
    secret.write_text(prosody.secret() + "\n")
    caplog.set_level(logging.INFO, logger="pipeline.link")
    result = CliRunner().invoke(cli, [
        "serve", "--db", fresh_dsn, "--ticks", "50", "--hz", "100",
        "--xmpp-server", f"127.0.0.1:{prosody.component_port}", "--component", prosody.component,
        "--secret-file", str(secret)])
    assert result.exit_code == 0, result.output
    assert "stopped at tick 50" in result.output
    # The gateway is a process of its own; the world hears from it over the link.
    assert f"gateway 1 (xmpp {prosody.component}) serves players" in caplog.text
    bad = CliRunner().invoke(cli, ["serve", "--db", fresh_dsn, "--xmpp-server", "nowhere", "--ticks", "1"])
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output


async def test_joins_and_leaves_a_player_sends_are_answered_like_any_command(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "alice") as alice:
        alice.online()
        await alice.expect(lambda b, u, r: (entity(u, 1) or {}).get("online") == "1")
        alice.say("join")                                   # online already: the world says so
        await alice.expect_body("join rejected: already_online")
        seq = alice.command("join")                         # a payload's join: its seq is acknowledged
        _, update, _ = await alice.expect(lambda b, u, r: u is not None and u.get("acked") == str(seq))
        assert [r.get("reason") for r in update if r.tag.endswith("rejected")] == ["already_online"]
        alice.messages.clear()
        alice.say("leave")                                  # offline: she sees nothing, but hears her ack
        await alice.expect(lambda b, u, r: u is not None and u.get("acked") is not None)
        alice.say("join")                                   # back, though presence never changed
        await alice.expect(lambda b, u, r: (entity(u, 1) or {}).get("online") == "1")


async def _answered_within(bot: Bot, seconds: float) -> None:
    """A step by `bot` (another player) is acknowledged within `seconds`."""
    started = asyncio.get_running_loop().time()
    seq = bot.command("move", dx=1, dy=0)
    await bot.expect(lambda b, u, r: u is not None and int(u.get("acked") or 0) >= seq)
    assert asyncio.get_running_loop().time() - started < seconds


async def test_a_presence_storm_ends_with_the_last_presence_and_no_refusals(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn, rate=5.0, burst=3) as running, Bot(prosody, "alice") as alice, \
            Bot(prosody, "bob") as bob:
        bob.online()
        alice.online()
        await alice.expect(lambda b, u, r: (entity(u, 1) or {}).get("online") == "1")
        await bob.expect(lambda b, u, r: u is not None)

        def online() -> int:
            return unpack_entity(running.loop.view.get(1))["online"]

        for last in ("offline", "online"):
            for _ in range(15):                 # 30 changes in a moment: far over 5 a second
                alice.offline()
                alice.online()
            if last == "offline":
                alice.offline()
            await _answered_within(bob, 1.0)    # bob plays on through alice's storm
            for _ in range(200):
                await asyncio.sleep(0.05)
                if online() == (last == "online"):
                    break
            await asyncio.sleep(0.3)            # and it stays so
            assert online() == (last == "online"), (last, running.gateway.presence.wanted)
        assert not [b for b, _, _ in alice.messages if "refused" in (b or "")]


async def test_look_shows_the_area_of_interest_and_is_rate_limited(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "alice") as alice, Bot(prosody, "bob") as bob:
        bob.online()
        alice.online()
        await alice.expect(lambda b, u, r: entity(u, 2) is not None)
        alice.messages.clear()
        for _ in range(8):
            alice.say("look")
        await _answered_within(bob, 1.0)        # bob plays on through alice's looks
        answers = [await alice.expect(lambda b, u, r: (b or "").startswith(("you:", "refused"))) for _ in range(8)]
        looks = [b for b, _, _ in answers if b.startswith("you:")]
        assert len(looks) == 5 and all(b.startswith("refused: rate limited") for b, _, _ in answers[5:])
        assert "bob#2" in looks[0] and "carol" not in looks[0] and "n4" in looks[0]   # near: bob, the rat


async def test_a_flood_from_one_player_costs_the_others_nothing(prosody, fresh_dsn):
    """As serve runs it: a few bursts' worth of one sender's commands wait, the rest is shed with an answer."""
    async with world_server(prosody, fresh_dsn, rate=20.0, burst=10, per_sender=20) as running, \
            Bot(prosody, "dave") as dave, Bot(prosody, "alice") as alice:
        dave.online()
        alice.online()
        await alice.expect(lambda b, u, r: entity(u, 1) is not None)
        await dave.expect(lambda b, u, r: u is not None)
        for _ in range(2000):
            dave.command("use")
        await asyncio.sleep(0.05)                       # the flood is on its way in
        started = asyncio.get_running_loop().time()
        seq = alice.command("move", dx=1, dy=0)
        await alice.expect(lambda b, u, r: u is not None and int(u.get("acked") or 0) >= seq)
        assert asyncio.get_running_loop().time() - started < 1.0
        await dave.expect(lambda b, u, r: r is not None and r.get("reason", "").startswith(("dropped", "rate")))
        assert running.inbox.dropped > 0


async def test_a_malformed_seq_does_not_move_the_players_text_commands(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "alice") as alice:
        alice.online()
        await alice.expect(lambda b, u, r: entity(u, 1) is not None)
        alice.command("use", seq=2**64)                   # refused: out of range
        await alice.expect_body("refused: malformed")
        alice.command("use", seq=2**62)                   # refused: no seq would be left above it
        await alice.expect_body("refused: out of order")
        alice.say("move 1 0")                             # the server's seq for it is still the next one
        await alice.expect(lambda b, u, r: (entity(u, 1) or {}).get("x") == "11")


async def test_a_chat_client_subscribes_and_its_plain_presence_joins_and_leaves(prosody, fresh_dsn, caplog):
    """As a chat client does it: add the world to the roster, then plain available and unavailable
    presence to its server (no directed presence): the world follows, and the log says so."""
    caplog.set_level(logging.INFO, logger="pipeline.xmpp.component")
    async with world_server(prosody, fresh_dsn) as running, Bot(prosody, "frank") as frank:
        jid = f"frank@{prosody.domain}"
        frank.client.send_presence(pto=frank.world, ptype="subscribe")

        async def online(wanted: int) -> None:
            for _ in range(200):
                entity_id = running.gateway._entity.get(jid)
                record = running.loop.view.get(entity_id) if entity_id else None
                if record is not None and unpack_entity(record)["online"] == wanted:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"frank never became online={wanted}")

        await online(1)                                  # the world's subscribe back brought his presence
        frank.client.send_presence(ptype="unavailable")  # to his own server: it tells its subscribers
        await online(0)
        frank.client.send_presence()
        await online(1)
        said = [r.getMessage() for r in caplog.records if "the world" in r.getMessage()]
        entity_id = running.gateway._entity[jid]
        heard = iter(said)
        assert all(f"{jid} (player {entity_id}) {done} the world" in heard for done in ("joined", "left", "joined")), \
            said        # in this order (a probe may add a pair)


async def test_a_person_who_only_writes_is_asked_for_their_presence(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn), Bot(prosody, "carol") as carol:
        asked = asyncio.Event()
        carol.client.add_event_handler("presence_subscribe", lambda p: asked.set())
        carol.say("look")                                   # no presence sent to the world, no roster entry
        await carol.expect_body("you:")
        await asyncio.wait_for(asked.wait(), 5)


async def test_an_account_whose_id_the_world_used_meanwhile_gets_a_fresh_one(prosody, fresh_dsn):
    """carol's account names entity 3, but she never joined and the world handed 3 out (an item,
    picked up since): she joins under a fresh id, never one the world has used."""
    used = world(player(1, 10, 10, online=0, name="alice"), player(2, 11, 10, online=0, name="bob"), next_id=100)
    async with world_server(prosody, fresh_dsn, seed=used) as running, Bot(prosody, "carol") as carol:
        carol.online()
        await carol.expect(lambda b, u, r: u is not None and u.get("acked") is not None)
        fresh = running.gateway._entity[f"carol@{prosody.domain}"]
        assert fresh >= 100 and unpack_entity(running.loop.view.get(fresh))["online"] == 1
        assert running.loop.view.get(3) is None


async def test_after_a_restart_nobody_stays_online_without_a_presence(prosody, fresh_dsn):
    """carol is online in the stored world (a server died with her in it) but has no XMPP session:
    the gateway probes every account when it connects, and silence takes her offline."""
    ghost = world(player(1, 10, 10, online=0, name="alice"), player(3, 50, 50, online=1, name="carol"), next_id=100)
    async with world_server(prosody, fresh_dsn, seed=ghost) as running:
        assert unpack_entity(running.loop.view.get(3))["online"] == 1
        for _ in range(200):
            await asyncio.sleep(0.05)
            if unpack_entity(running.loop.view.get(3))["online"] == 0:
                break
        assert unpack_entity(running.loop.view.get(3))["online"] == 0


async def test_a_player_travels_to_another_zone_and_plays_on_there(prosody, fresh_dsn):
    """GAME_RULES.md "Zones": out of its zone at its travel, at the other zone's spawn point the next tick;
    the gateway follows it there (what is in flight crosses the link too) and its seqs go on."""
    there = {"id": 2, "width": 20, "height": 20, "spawn_x": 3, "spawn_y": 4}
    two_zones = world(player(1, 10, 10, online=0, name="alice"), zones=[ZONE, there], next_id=100)
    async with world_server(prosody, fresh_dsn, seed=two_zones), Bot(prosody, "alice") as alice:
        alice.online()
        await alice.expect(lambda b, u, r: entity(u, 1) is not None)
        seq = alice.command("travel", zone=2)
        _, update, _ = await alice.expect(lambda b, u, r: u is not None and u.get("acked") == str(seq))
        at_spawn = {"x": "3", "y": "4"}          # her record in flight already stands there (docs/rules.md)
        if {k: (entity(update, 1) or {}).get(k) for k in at_spawn} != at_spawn:
            await alice.expect(lambda b, u, r: {k: (entity(u, 1) or {}).get(k) for k in at_spawn} == at_spawn)
        seq = alice.command("move", dx=1, dy=0)          # her seqs go on where they were
        _, update, _ = await alice.expect(lambda b, u, r: u is not None and u.get("acked") == str(seq))
        assert entity(update, 1)["x"] == "4"
        alice.say("travel 2")                     # a person's words: she is there already
        await alice.expect_body("same_zone")
