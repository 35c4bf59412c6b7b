"""say: a chat to every online player near the speaker, the speaker included."""

import numpy as np

from pipeline.effects import effect_array
from tests.rules.kit import cmd, non_aoi, rejections
from tests.support import ZONE, player

ZONE2 = dict(id=2, width=64, height=64, spawn_x=1, spawn_y=1)


def test_recipients_are_online_players_in_the_zone_within_10_ascending(start):
    s = start(player(5, 20, 20),
              player(2, 30, 30),              # distance 10: hears
              player(9, 10, 21),              # distance 10: hears
              player(3, 31, 20),              # distance 11: does not
              player(4, 21, 21, online=0),    # offline: does not
              player(6, 20, 20, zone=2),      # other zone: does not
              player(7, 19, 19, hp=0, respawn_tick=90),  # dead but online: hears
              zones=[ZONE, ZONE2])
    _, effects = s.step(cmd(5, 1, "say", text="hello there"))
    assert non_aoi(effects) == [{"type": "chat", "from": 5, "text": "hello there",
                                 "recipients": [2, 5, 7, 9]}]


def test_the_dead_can_speak(start):
    s = start(player(1, hp=0, respawn_tick=90))
    _, effects = s.step(cmd(1, 1, "say", text="boo"))
    assert non_aoi(effects) == [{"type": "chat", "from": 1, "text": "boo", "recipients": [1]}]


def test_chat_effects_point_into_the_frame_text_and_the_recipients_list(start):
    s = start(player(1, 5, 5), player(2, 6, 6), player(3, 60, 60))
    result, effects = s.step(cmd(1, 1, "join", zone=1, name="x"), cmd(2, 1, "say", text="hé"),
                             cmd(3, 1, "say", text="yo"))
    raw = effect_array(result)[:3]
    recipients = np.frombuffer(result.recipients, dtype="<u8").tolist()
    assert recipients == [1, 2, 3]
    # join name "x" is byte 0 of the text; "hé" bytes 1..3; "yo" bytes 4..5
    assert raw[1][["text_offset", "text_len", "list_offset", "list_count"]].tolist() == (1, 3, 0, 2)
    assert raw[2][["text_offset", "text_len", "list_offset", "list_count"]].tolist() == (4, 2, 2, 1)
    assert [e["text"] for e in effects if e["type"] == "chat"] == ["hé", "yo"]


def test_text_must_be_1_to_200_bytes(start):
    s = start(player(1))
    _, effects = s.step(cmd(1, 1, "say", text=""), cmd(1, 2, "say", text="x" * 201),
                        cmd(1, 3, "say", text="é" * 101), cmd(1, 4, "say", text="z" * 200))
    assert rejections(effects) == [(1, 1, "bad_text"), (1, 2, "bad_text"), (1, 3, "bad_text")]
    assert [e["text"] for e in effects if e["type"] == "chat"] == ["z" * 200]


def test_reason_precedence(start):
    s = start(player(1, online=0))
    _, effects = s.step(cmd(1, 1, "say", text=""), cmd(1, 2, "say", text="hi"))
    assert rejections(effects) == [(1, 1, "offline"), (1, 2, "offline")]
