// Player commands (GAME_RULES.md "Commands", docs/rules.md "Commands"),
// one function per op in the rules' order, and the death rule they share
// with the npcs.
//
// Each op checks its reasons in the listed order; the first broken rule is
// the command's `rejected` effect and nothing else happens, except that an
// existing player's last_seq always becomes the command's seq. Every write
// goes through touch() (the journal) and every write that moves, kills,
// revives, heals or logs an entity in or out is followed by sync() (the
// indexes), so later commands see the world as earlier ones left it.

import { Command, Entity, ItemType, Kind, Op, Reason, TransitKind, Zone } from "../_generated/schema";
import { slotOf } from "../ids";
import { noteCreated, noteDeparted, noteReclaimed, noteRemoved, touch } from "../journal";
import { chat, died, rejected } from "../output";
import { schedule } from "../schedule";
import { board, inFlight, send } from "../transit";
import { listeners } from "./aoi";
import {
  claimId, createEntity, findZone, PLAY_IDS, rec, reclaim, removeEntity, sync, takeZoneId, tick, zoneOf,
} from "../world";

const NAME_MAX: u32 = 32;
const TEXT_MAX: u32 = 200;
const RESPAWN_DELAY: u64 = 10;
const COOLDOWN: u64 = 2;
const POTION_HEAL: i32 = 30;

// The tick's CommandFrame text blob (join names, say texts).
let text: usize = 0;

@inline function reject(cmd: usize, reason: u8): void {
  rejected(Command.player(cmd), Command.seq(cmd), reason);
}

@inline function distance(a: usize, b: usize): i32 {
  return max(abs(<i32>Entity.x(a) - <i32>Entity.x(b)), abs(<i32>Entity.y(a) - <i32>Entity.y(b)));
}

@inline function clampTo(v: i32, size: u16): u16 { return <u16>min(max(v, 0), <i32>size - 1); }

@inline function living(p: usize): bool { return Entity.respawn_tick(p) == 0; }
@inline function online(p: usize): bool { return Entity.online(p) != 0; }

/**
 * The issuing player's slot with its last_seq advanced, or -1 after
 * rejecting `offline` (a traveller in flight, in no zone: its last_seq
 * advances there) or `not_a_player` (the id is no entity, or not a player).
 */
function issuer(cmd: usize): i32 {
  const slot = slotOf(Command.player(cmd));
  if (slot < 0) {
    const flying = inFlight(Command.player(cmd));
    if (flying == 0) {
      reject(cmd, Reason.not_a_player);
    } else {
      Entity.set_last_seq(flying, Command.seq(cmd));
      reject(cmd, Reason.offline);
    }
    return -1;
  }
  if (Entity.kind(rec(slot)) != Kind.player) {
    reject(cmd, Reason.not_a_player);
    return -1;
  }
  Entity.set_last_seq(touch(slot), Command.seq(cmd));
  return slot;
}

/** Runs one command of the batch (text: the frame's text blob). */
export function runCommand(cmd: usize, blob: usize, blobLen: u32): void {
  text = blob;
  assert(<u64>Command.text_offset(cmd) + <u64>Command.text_len(cmd) <= <u64>blobLen,
    "command text outside the frame's text");
  const op = Command.op(cmd);
  if (op == Op.join) join(cmd);
  else if (op == Op.leave) leave(cmd);
  else if (op == Op.move) move(cmd);
  else if (op == Op.attack) attack(cmd);
  else if (op == Op.pickup) pickup(cmd);
  else if (op == Op.use) use(cmd);
  else if (op == Op.transfer) transfer(cmd);
  else if (op == Op.say) say(cmd);
  else if (op == Op.travel) travel(cmd);
  else assert(false, "unknown op");
}

/** join: a new player at the zone spawn, or a saved player back online where it was. */
export function join(cmd: usize): void {
  const id = Command.player(cmd);
  assert(id != 0, "join: player id 0");
  const slot = slotOf(id);
  if (slot >= 0) {
    const p = rec(slot);
    if (Entity.kind(p) != Kind.player) return reject(cmd, Reason.not_a_player);
    Entity.set_last_seq(touch(slot), Command.seq(cmd));
    if (online(p)) return reject(cmd, Reason.already_online);
  } else {
    const flying = inFlight(id);
    if (flying == 0 && id >= PLAY_IDS) return reject(cmd, Reason.not_a_player); // what play creates
    if (flying != 0) {
      Entity.set_last_seq(flying, Command.seq(cmd));
      return reject(cmd, Reason.already_online);
    }
  }
  const zone = findZone(Command.zone(cmd));
  if (zone == 0) return reject(cmd, Reason.no_such_zone);
  const nameLen = Command.text_len(cmd);
  if (nameLen == 0 || nameLen > NAME_MAX) return reject(cmd, Reason.bad_name);

  if (slot >= 0) {
    Entity.set_online(rec(slot), 1);
    sync(slot);
    return;
  }
  let s = reclaim(id);
  if (s >= 0) {
    noteReclaimed(s);
  } else {
    s = createEntity(id);
    noteCreated(s);
  }
  claimId(id);
  const p = rec(s);
  Entity.set_kind(p, Kind.player);
  Entity.set_zone(p, Zone.id(zone));
  Entity.set_x(p, Zone.spawn_x(zone));
  Entity.set_y(p, Zone.spawn_y(zone));
  Entity.set_hp(p, 100);
  Entity.set_max_hp(p, 100);
  Entity.set_attack(p, 10);
  Entity.set_defense(p, 2);
  Entity.set_online(p, 1);
  Entity.set_last_seq(p, Command.seq(cmd));
  Entity.set_name_len(p, <u8>nameLen);
  memory.copy(p + Entity.NAME_OFFSET, text + Command.text_offset(cmd), nameLen);
  sync(s);
}

/** leave: offline, invisible, keeping everything. */
export function leave(cmd: usize): void {
  const slot = issuer(cmd);
  if (slot < 0) return;
  const p = rec(slot);
  if (!online(p)) return reject(cmd, Reason.offline);
  Entity.set_online(p, 0);
  sync(slot);
}

/** move: one step (dx, dy in -1..1), clamped to the zone. */
export function move(cmd: usize): void {
  const slot = issuer(cmd);
  if (slot < 0) return;
  const p = rec(slot);
  if (!online(p)) return reject(cmd, Reason.offline);
  if (!living(p)) return reject(cmd, Reason.dead);
  const dx = Command.dx(cmd), dy = Command.dy(cmd);
  if (dx < -1 || dx > 1 || dy < -1 || dy > 1) return reject(cmd, Reason.bad_step);
  const zone = zoneOf(p);
  Entity.set_x(p, clampTo(<i32>Entity.x(p) + <i32>dx, Zone.width(zone)));
  Entity.set_y(p, clampTo(<i32>Entity.y(p) + <i32>dy, Zone.height(zone)));
  sync(slot);
}

/** attack: a living npc, or a living online other player, adjacent, off cooldown. */
export function attack(cmd: usize): void {
  const slot = issuer(cmd);
  if (slot < 0) return;
  const p = rec(slot);
  if (!online(p)) return reject(cmd, Reason.offline);
  if (!living(p)) return reject(cmd, Reason.dead);
  const target = slotOf(Command.target(cmd));
  if (target < 0 || target == slot) return reject(cmd, Reason.no_target);
  const t = rec(target);
  const kind = Entity.kind(t);
  if (kind == Kind.item || !living(t) || (kind == Kind.player && !online(t))) {
    return reject(cmd, Reason.no_target);
  }
  if (Entity.zone(t) != Entity.zone(p) || distance(p, t) > 1) return reject(cmd, Reason.out_of_range);
  if (Entity.next_action_tick(p) > tick) return reject(cmd, Reason.cooldown);
  strike(slot, target);
}

/** pickup: an item in reach; gold adds its amount, a potion adds one potion. */
export function pickup(cmd: usize): void {
  const slot = issuer(cmd);
  if (slot < 0) return;
  const p = rec(slot);
  if (!online(p)) return reject(cmd, Reason.offline);
  if (!living(p)) return reject(cmd, Reason.dead);
  const item = slotOf(Command.target(cmd));
  if (item < 0 || Entity.kind(rec(item)) != Kind.item) return reject(cmd, Reason.no_item);
  const i = rec(item);
  if (Entity.zone(i) != Entity.zone(p) || distance(p, i) > 1) return reject(cmd, Reason.out_of_range);
  if (Entity.item_type(i) == ItemType.gold) Entity.set_gold(p, Entity.gold(p) + Entity.amount(i));
  else Entity.set_potions(p, Entity.potions(p) + 1);
  noteRemoved(item);
  removeEntity(item);
}

/** use: drink a potion, hp + 30 up to max_hp. */
export function use(cmd: usize): void {
  const slot = issuer(cmd);
  if (slot < 0) return;
  const p = rec(slot);
  if (!online(p)) return reject(cmd, Reason.offline);
  if (!living(p)) return reject(cmd, Reason.dead);
  if (Entity.potions(p) <= 0) return reject(cmd, Reason.no_potion);
  Entity.set_hp(p, min(Entity.max_hp(p), Entity.hp(p) + POTION_HEAL));
  Entity.set_potions(p, Entity.potions(p) - 1);
  sync(slot);
}

/**
 * transfer: bank gold to another player, any distance, online or not; at
 * once in the sender's zone, else as a credit the next tick settles.
 */
export function transfer(cmd: usize): void {
  const slot = issuer(cmd);
  if (slot < 0) return;
  const p = rec(slot);
  if (!online(p)) return reject(cmd, Reason.offline);
  const to = slotOf(Command.target(cmd));
  const here = to >= 0 && Entity.zone(rec(to)) == Entity.zone(p);
  if (to == slot || (here && Entity.kind(rec(to)) != Kind.player)) return reject(cmd, Reason.no_target);
  const amount = Command.amount(cmd);
  if (amount <= 0) return reject(cmd, Reason.bad_amount);
  if (amount > Entity.gold(p)) return reject(cmd, Reason.insufficient_funds);
  Entity.set_gold(p, Entity.gold(p) - amount);
  if (here) {
    const q = touch(to);
    Entity.set_gold(q, Entity.gold(q) + amount);
  } else {
    // Another zone (or none, or in flight) decides next tick what `to` is.
    send(TransitKind.credit, tick + 1, Entity.id(p), Command.target(cmd), amount);
  }
}

/** say: a chat to the online players of the speaker's area of interest, ascending id. */
export function say(cmd: usize): void {
  const slot = issuer(cmd);
  if (slot < 0) return;
  const p = rec(slot);
  if (!online(p)) return reject(cmd, Reason.offline);
  const len = Command.text_len(cmd);
  if (len == 0 || len > TEXT_MAX) return reject(cmd, Reason.bad_text);
  chat(Entity.id(p), Command.text_offset(cmd), len, listeners(slot));
}

/** travel: out of its zone now, at the spawn point of another at the start of the next tick. */
export function travel(cmd: usize): void {
  const slot = issuer(cmd);
  if (slot < 0) return;
  const p = rec(slot);
  if (!online(p)) return reject(cmd, Reason.offline);
  if (!living(p)) return reject(cmd, Reason.dead);
  const zone = findZone(Command.zone(cmd));
  if (zone == 0) return reject(cmd, Reason.no_such_zone);
  if (Zone.id(zone) == Entity.zone(p)) return reject(cmd, Reason.same_zone);
  noteDeparted(slot);
  removeEntity(slot);
  // The slot keeps the record until the tick ends: the area of interest compares it.
  Entity.set_zone(p, Zone.id(zone));
  Entity.set_x(p, Zone.spawn_x(zone));
  Entity.set_y(p, Zone.spawn_y(zone));
  board(p, tick + 1);
}

/**
 * An attack that hits (players and npcs alike): damage max(1, attack -
 * defense), the attacker waits two ticks, and a target at hp <= 0 dies.
 */
export function strike(attacker: i32, target: i32): void {
  const a = touch(attacker);
  const t = touch(target);
  const damage = max(1, Entity.attack(a) - Entity.defense(t));
  Entity.set_next_action_tick(a, tick + COOLDOWN);
  const hp = Entity.hp(t) - damage;
  if (hp > 0) {
    Entity.set_hp(t, hp);
    sync(target);
  } else {
    die(target, Entity.id(a));
  }
}

/**
 * Death: hp 0, back in ten ticks, and any gold it held dropped as a new
 * gold item where it fell (its id from the zone's next_id); with no id left
 * in the zone's range, it keeps the gold.
 */
export function die(slot: i32, by: u64): void {
  let p = touch(slot);
  const id = Entity.id(p);
  Entity.set_hp(p, 0);
  Entity.set_respawn_tick(p, tick + RESPAWN_DELAY);
  died(id, by);
  schedule(tick + RESPAWN_DELAY, id, slot);
  const gold = Entity.gold(p);
  const itemId = gold > 0 ? takeZoneId(zoneOf(p)) : 0;
  if (itemId != 0) {
    const s = createEntity(itemId);
    noteCreated(s);
    p = rec(slot); // creating may have moved the records
    const item = rec(s);
    Entity.set_kind(item, Kind.item);
    Entity.set_item_type(item, ItemType.gold);
    Entity.set_amount(item, gold);
    Entity.set_zone(item, Entity.zone(p));
    Entity.set_x(item, Entity.x(p));
    Entity.set_y(item, Entity.y(p));
    sync(s);
    Entity.set_gold(p, 0);
  }
  sync(slot);
}
