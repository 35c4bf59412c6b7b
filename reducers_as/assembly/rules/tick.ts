// The phases before the commands (GAME_RULES.md "Ticks", docs/rules.md
// "Tick phases"): arrivals, respawn, regeneration, npc behaviour, in that order.
//
// None of them scans the world: respawn pops what is due from the respawn
// schedule, regeneration walks the maintained set of wounded entities, and
// the npc phase only looks at npcs near a living online player (an npc with
// no such player within 5 has no target and stays).

import { Entity, Kind, Transit, TransitKind, Zone } from "../_generated/schema";
import { slotOf } from "../ids";
import { interestValid, soleArea } from "../interest";
import { KeyList } from "../mem";
import { noteArrived, touch } from "../journal";
import { respawned } from "../output";
import { popDue } from "../schedule";
import { sortKeys } from "../sort";
import { livingNpcsNear, nearestDistance, nearestLiving, nodeX, nodeY, nodeZone } from "../spatial";
import { dueAt, send, takeDue } from "../transit";
import {
  holds, land, livingOnline, newEpoch, rec, sync, tick, wounded, zoneOf,
} from "../world";
import { strike } from "./commands";

const REGEN_EVERY: u64 = 5;
const SIGHT: i32 = 5;

const due = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const npcs = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));

@inline function sign(v: i32): i32 { return (v > 0 ? 1 : 0) - (v < 0 ? 1 : 0); }

/**
 * 1b. Arrivals: what the last tick sent between zones, all of it due now, in
 * its order. Travellers (ascending id) come back as they were in flight,
 * with the area they had there, themselves alone. Credits and refunds (in
 * the order they were made) go to their player; a credit to no player goes
 * back to its sender as a refund, due next tick.
 */
export function arrive(): void {
  const n = takeDue();
  for (let i = 0; i < n; i++) {
    const t = dueAt(i);
    assert(Transit.arrive_tick(t) == tick, "transit item not due this tick");
    if (Transit.kind(t) == TransitKind.traveller) {
      const record = t + Transit.RECORD_OFFSET;
      const slot = land(record);
      noteArrived(slot, record);
      if (interestValid) soleArea(slot);
      continue;
    }
    const to = slotOf(Transit.to_id(t));
    if (to >= 0 && Entity.kind(rec(to)) == Kind.player) {
      const p = touch(to);
      Entity.set_gold(p, Entity.gold(p) + Transit.amount(t));
    } else {
      assert(Transit.kind(t) == TransitKind.credit, "refund to no player");
      send(TransitKind.refund, tick + 1, Transit.to_id(t), Transit.from_id(t), Transit.amount(t));
    }
  }
}

/**
 * 2. Respawn, ascending id: every dead player or npc whose respawn_tick has
 * come gets hp = max_hp at its zone's spawn (players) or home (npcs).
 */
export function respawn(): void {
  due.clear();
  popDue(tick, due);
  sortKeys(due);
  let prev: u64 = 0;
  for (let i = 0; i < due.len; i++) {
    const id = due.b(i), slot = <i32>due.v(i);
    if (id == prev) continue;
    prev = id;
    // The schedule may hold stale entries: the record decides.
    if (!holds(slot, id)) continue;
    const at = Entity.respawn_tick(rec(slot));
    if (at == 0 || at > tick) continue;
    const p = touch(slot);
    Entity.set_hp(p, Entity.max_hp(p));
    Entity.set_respawn_tick(p, 0);
    if (Entity.kind(p) == Kind.player) {
      const zone = zoneOf(p);
      Entity.set_x(p, Zone.spawn_x(zone));
      Entity.set_y(p, Zone.spawn_y(zone));
    } else {
      Entity.set_x(p, Entity.home_x(p));
      Entity.set_y(p, Entity.home_y(p));
    }
    sync(slot);
    respawned(id);
  }
}

/** 3. Regeneration, every fifth tick: each living wounded player or npc gains 1 hp. */
export function regenerate(): void {
  if (tick % REGEN_EVERY != 0) return;
  // Backwards: sync() may swap the last member into position i, and every
  // member after i has been healed already.
  for (let i = wounded.len - 1; i >= 0; i--) {
    const slot = wounded.get(i);
    const p = touch(slot);
    Entity.set_hp(p, Entity.hp(p) + 1);
    sync(slot);
  }
}

/**
 * 4. Npc behaviour, ascending id: a living npc goes for the nearest living
 * online player in its zone within 5 (ties: lowest id), attacking when
 * adjacent and off cooldown, else stepping toward it.
 */
export function npcBehaviour(): void {
  // The npcs that can have a target: living npcs within 5 of a living online
  // player. Only npcs move in this phase and players only drop out of the
  // set (killed), so no other npc can gain a target before its turn.
  npcs.clear();
  const epoch = newEpoch();
  for (let i = 0; i < livingOnline.len; i++) {
    const player = livingOnline.get(i);
    livingNpcsNear(nodeZone(player), nodeX(player), nodeY(player), SIGHT, epoch, npcs);
  }
  sortKeys(npcs);
  for (let i = 0; i < npcs.len; i++) act(<i32>npcs.v(i));
}

/** One npc's turn, in the world as the npcs before it left it. */
function act(slot: i32): void {
  const p = rec(slot);
  if (Entity.respawn_tick(p) != 0) return;
  const x = <i32>Entity.x(p), y = <i32>Entity.y(p);
  const target = nearestLiving(Entity.zone(p), x, y, SIGHT);
  if (target < 0) return;
  if (nearestDistance <= 1) {
    if (Entity.next_action_tick(p) <= tick) strike(slot, target);
    return;
  }
  const t = rec(target);
  touch(slot);
  Entity.set_x(p, <u16>(x + sign(<i32>Entity.x(t) - x)));
  Entity.set_y(p, <u16>(y + sign(<i32>Entity.y(t) - y)));
  sync(slot);
}
