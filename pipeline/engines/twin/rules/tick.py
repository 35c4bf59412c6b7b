"""What happens every tick before the commands, in GAME_RULES.md's order:
arrivals, respawn, regeneration, npc behaviour (docs/rules.md, "Tick phases").

Each phase visits only the entities it can affect, never the whole world:
respawn pops a heap of due ticks, regeneration walks the wounded set, and
only npcs near a living online player can have a target.
"""

from __future__ import annotations

from schema._generated.layout import Kind, TransitKind

from ..effect_log import EffectLog
from ..entity import Entity, distance
from ..world import World
from .commands import ATTACK_RANGE, strike

REGENERATION_PERIOD = 5  # regeneration on ticks divisible by 5
NPC_SIGHT = 5            # an npc hunts players within this distance


def arrive(world: World) -> None:
    """What the last tick sent between zones, all of it due now: travellers
    (ascending id), then credits and refunds in the order they were made."""
    for item in world.transit.take():
        if item.arrive_tick != world.tick:
            raise AssertionError(f"a transit item due at tick {item.arrive_tick}, not {world.tick}")
        if item.traveller is not None:
            world.arrive(item.traveller)
            continue
        to = world.entities.get(item.to_id)
        if to is not None and to.kind == Kind.player:
            world.touch(to)
            to.gold += item.amount
        elif item.kind == TransitKind.credit:
            # Back to the sender, a tick later: zones answer only what was sent to them.
            world.send(TransitKind.refund, item.to_id, item.from_id, item.amount)
        else:
            raise AssertionError(f"a refund to {item.to_id}, which is no player")


def respawn(world: World, log: EffectLog) -> None:
    """Dead players and npcs whose respawn_tick has come, ascending id."""
    for e in world.due_respawns():
        world.touch(e)
        e.hp = e.max_hp
        e.respawn_tick = 0
        if e.kind == Kind.player:
            zone = world.zones[e.zone]
            world.move_to(e, zone.spawn_x, zone.spawn_y)
        else:
            world.move_to(e, e.home_x, e.home_y)
        log.respawned(e.id)


def regenerate(world: World) -> None:
    """Every living wounded player (online or not) and npc gains 1 hp.

    `wounded` is exact here: it was settled when the last tick was sealed, and
    respawn, the only phase before this one, touches only the dead.
    """
    if world.tick % REGENERATION_PERIOD:
        return
    for id in world.wounded:
        e = world.entities[id]
        world.touch(e)
        e.hp += 1


def npc_behaviour(world: World, log: EffectLog) -> None:
    """Each npc, ascending id, in the world as the npcs before it left it."""
    for npc in _npcs_near_prey(world):
        if not npc.living:
            continue
        target = _nearest_prey(world, npc)
        if target is None:
            continue  # no one near any more: it stays
        if distance(npc, target) <= ATTACK_RANGE:
            if npc.next_action_tick <= world.tick:
                strike(world, npc, target, log)
            # else it waits for its cooldown
        else:
            world.move_to(npc, npc.x + _sign(target.x - npc.x), npc.y + _sign(target.y - npc.y))


def _is_prey(e: Entity) -> bool:
    return e.kind == Kind.player and e.online == 1 and e.living


def _npcs_near_prey(world: World) -> list[Entity]:
    """Living npcs within NPC_SIGHT of some living online player, ascending id.

    Gathered once, before any npc acts: npcs only move themselves and can only
    kill players, so no npc gains a target it did not have here. Each is
    re-checked against the current world when its turn comes.
    """
    found: dict[int, Entity] = {}
    for id in world.online:
        player = world.entities[id]
        if not player.living:
            continue
        for e in world.grid.near(player.zone, player.x, player.y, NPC_SIGHT):
            if e.kind == Kind.npc and e.living:
                found[e.id] = e
    return [found[id] for id in sorted(found)]


def _nearest_prey(world: World, npc: Entity) -> Entity | None:
    """The nearest living online player in the npc's zone within NPC_SIGHT; ties: lowest id."""
    best: Entity | None = None
    best_key = (0, 0)
    for e in world.grid.near(npc.zone, npc.x, npc.y, NPC_SIGHT):
        if _is_prey(e):
            key = (distance(npc, e), e.id)
            if best is None or key < best_key:
                best, best_key = e, key
    return best


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)
