"""Player commands, one function per op in GAME_RULES.md's order, and the
attack and death rules they share with npcs (docs/rules.md, "Commands").

Each op checks its reasons in the order docs/rules.md lists them and returns
the first one broken, having changed nothing; or it applies the op and
returns Reason.none. `run_command` does what every command shares: the
`not_a_player` check, `last_seq`, and the `rejected` effect.
"""

from __future__ import annotations

import struct
from typing import Callable, Iterator, NamedTuple

from pipeline.engines.frames import FrameError
from schema._generated import layout
from schema._generated.layout import ItemType, Kind, Op, Reason, TransitKind
from vocabulary.ids import PLAY_IDS, zone_id_end

from ..effect_log import EffectLog
from ..entity import NAME_MAX, Entity, distance
from ..world import World
from .aoi import listeners

COMMAND = struct.Struct(layout.COMMAND_FORMAT)

NEW_PLAYER = dict(hp=100, max_hp=100, attack=10, defense=2)
ATTACK_RANGE = 1
ATTACK_COOLDOWN = 2   # next_action_tick = tick + 2
RESPAWN_DELAY = 10    # respawn_tick = tick + 10
POTION_HP = 30
TEXT_MAX = 200


class Command(NamedTuple):
    """One packed Command struct, by field name. `target` is the attack
    target, the pickup item or the transfer recipient."""

    player: int
    seq: int
    target: int
    dx: int
    dy: int
    amount: int
    zone: int
    text_offset: int
    text_len: int
    op: int


assert Command._fields == layout.COMMAND_FIELDS, "Command drifted from schema/world.fbs"


def decode_commands(payload: bytes | memoryview) -> Iterator[Command]:
    return map(Command._make, COMMAND.iter_unpack(payload))


def command_text(cmd: Command, text: bytes) -> bytes:
    """A join name or say text. Text outside the frame's blob is a broken frame."""
    if cmd.text_offset + cmd.text_len > len(text):
        raise FrameError(f"command text {cmd.text_offset}+{cmd.text_len} runs past the "
                         f"{len(text)}-byte text blob")
    return text[cmd.text_offset:cmd.text_offset + cmd.text_len]


def run_command(world: World, cmd: Command, text: bytes, log: EffectLog) -> None:
    flying = world.transit.flying
    if cmd.op == Op.join:
        reason = join(world, cmd, text)
    else:
        issuer = world.entities.get(cmd.player)
        if issuer is None and cmd.player in flying:
            reason = Reason.offline   # in flight, in no zone, until the next tick
        elif issuer is None or issuer.kind != Kind.player:
            reason = Reason.not_a_player
        else:
            reason = _OPS[Op(cmd.op)](world, issuer, cmd, text, log)
    # Accepted or rejected, a command of an existing player advances its
    # last_seq (a join may just have created it), in flight too. Anything else changes nothing.
    player = world.entities.get(cmd.player) or flying.get(cmd.player)
    if player is not None and player.kind == Kind.player:
        world.touch(player)
        player.last_seq = cmd.seq
    if reason != Reason.none:
        log.rejected(cmd.player, cmd.seq, reason)


def join(world: World, cmd: Command, text: bytes) -> Reason:
    existing = world.entities.get(cmd.player)
    flying = cmd.player in world.transit.flying
    if existing is not None and existing.kind != Kind.player:
        return Reason.not_a_player
    if existing is None and not flying and cmd.player >= PLAY_IDS:
        return Reason.not_a_player   # ids from 2^62 up are what play creates
    if flying or (existing is not None and existing.online):
        return Reason.already_online
    zone = world.zones.get(cmd.zone)
    if zone is None:
        return Reason.no_such_zone
    name = command_text(cmd, text)
    if not 1 <= len(name) <= NAME_MAX:
        return Reason.bad_name
    if existing is not None:
        # A returning player comes back where it was saved, zone and name kept.
        world.set_online(existing, True)
        return Reason.none
    world.create(Entity.new(id=cmd.player, kind=Kind.player, zone=zone.id, x=zone.spawn_x,
                            y=zone.spawn_y, online=1, last_seq=cmd.seq, name=name, **NEW_PLAYER))
    if cmd.player >= world.next_id:
        world.next_id = cmd.player + 1  # ids stay unique
    return Reason.none


def leave(world: World, player: Entity, cmd: Command, text: bytes, log: EffectLog) -> Reason:
    if not player.online:
        return Reason.offline
    world.set_online(player, False)
    return Reason.none


def move(world: World, player: Entity, cmd: Command, text: bytes, log: EffectLog) -> Reason:
    if not player.online:
        return Reason.offline
    if not player.living:
        return Reason.dead
    if not (-1 <= cmd.dx <= 1 and -1 <= cmd.dy <= 1):
        return Reason.bad_step
    zone = world.zones[player.zone]
    world.move_to(player, min(max(player.x + cmd.dx, 0), zone.width - 1),
                  min(max(player.y + cmd.dy, 0), zone.height - 1))
    return Reason.none


def attack(world: World, player: Entity, cmd: Command, text: bytes, log: EffectLog) -> Reason:
    if not player.online:
        return Reason.offline
    if not player.living:
        return Reason.dead
    target = world.entities.get(cmd.target)
    # Items, the attacker itself, the dead and offline players (invisible) are no targets.
    if (target is None or target.kind == Kind.item or target is player
            or not target.living or not target.visible):
        return Reason.no_target
    if target.zone != player.zone or distance(player, target) > ATTACK_RANGE:
        return Reason.out_of_range
    if player.next_action_tick > world.tick:
        return Reason.cooldown
    strike(world, player, target, log)
    return Reason.none


def pickup(world: World, player: Entity, cmd: Command, text: bytes, log: EffectLog) -> Reason:
    if not player.online:
        return Reason.offline
    if not player.living:
        return Reason.dead
    item = world.entities.get(cmd.target)
    if item is None or item.kind != Kind.item:
        return Reason.no_item
    if item.zone != player.zone or distance(player, item) > ATTACK_RANGE:
        return Reason.out_of_range
    world.touch(player)
    if item.item_type == ItemType.gold:
        player.gold += item.amount
    else:
        player.potions += 1
    world.remove(item)
    return Reason.none


def use(world: World, player: Entity, cmd: Command, text: bytes, log: EffectLog) -> Reason:
    if not player.online:
        return Reason.offline
    if not player.living:
        return Reason.dead
    if player.potions <= 0:
        return Reason.no_potion
    world.touch(player)
    player.hp = min(player.max_hp, player.hp + POTION_HP)
    player.potions -= 1
    return Reason.none


def transfer(world: World, player: Entity, cmd: Command, text: bytes, log: EffectLog) -> Reason:
    # A bank transfer: the sender may be dead, the recipient anywhere and offline.
    if not player.online:
        return Reason.offline
    to = world.entities.get(cmd.target)
    here = to is not None and to.zone == player.zone
    if to is player or (to is not None and here and to.kind != Kind.player):
        return Reason.no_target
    if cmd.amount <= 0:
        return Reason.bad_amount
    if cmd.amount > player.gold:
        return Reason.insufficient_funds
    world.touch(player)
    player.gold -= cmd.amount
    if to is not None and here:
        world.touch(to)
        to.gold += cmd.amount
    else:
        # Another zone (or none, or in flight) decides next tick what `to` is.
        world.send(TransitKind.credit, player.id, cmd.target, cmd.amount)
    return Reason.none


def say(world: World, player: Entity, cmd: Command, text: bytes, log: EffectLog) -> Reason:
    # Dead players can speak.
    if not player.online:
        return Reason.offline
    if not 1 <= len(command_text(cmd, text)) <= TEXT_MAX:
        return Reason.bad_text
    recipients = listeners(world, player)
    log.chat(player.id, cmd.text_offset, cmd.text_len, recipients)
    return Reason.none


def travel(world: World, player: Entity, cmd: Command, text: bytes, log: EffectLog) -> Reason:
    if not player.online:
        return Reason.offline
    if not player.living:
        return Reason.dead
    zone = world.zones.get(cmd.zone)
    if zone is None:
        return Reason.no_such_zone
    if zone.id == player.zone:
        return Reason.same_zone
    world.depart(player, zone)
    return Reason.none


_OPS: dict[Op, Callable[[World, Entity, Command, bytes, EffectLog], Reason]] = {
    Op.leave: leave, Op.move: move, Op.attack: attack, Op.pickup: pickup,
    Op.use: use, Op.transfer: transfer, Op.say: say, Op.travel: travel,
}


# -- shared with npc behaviour (rules/tick.py) -------------------------------

def strike(world: World, attacker: Entity, target: Entity, log: EffectLog) -> None:
    """One attack that passed its checks, by a player or an npc."""
    world.touch(attacker)
    attacker.next_action_tick = world.tick + ATTACK_COOLDOWN
    world.touch(target)
    target.hp -= max(1, attacker.attack - target.defense)
    if target.hp <= 0:
        die(world, target, attacker, log)


def die(world: World, victim: Entity, killer: Entity, log: EffectLog) -> None:
    """The death rule: hp 0, respawn in 10 ticks, and any gold dropped as an item
    with an id from the victim's zone (while its range lasts: after that the
    victim keeps its gold).

    Everything else about the victim (potions, next_action_tick, online) stays.
    """
    world.touch(victim)
    victim.hp = 0
    victim.respawn_tick = world.tick + RESPAWN_DELAY
    world.schedule_respawn(victim)
    log.died(victim.id, killer.id)
    zone = world.zones[victim.zone]
    if victim.gold > 0 and zone.next_id < zone_id_end(zone.id):
        world.create(Entity.new(id=zone.next_id, kind=Kind.item, zone=victim.zone, x=victim.x,
                                y=victim.y, item_type=ItemType.gold, amount=victim.gold))
        zone.next_id += 1
        victim.gold = 0
