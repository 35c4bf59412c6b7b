// The resident world: header, zones and entity records, with the indexes
// that keep every rule local (docs/abi.md: transform is O(frame + changes)).
//
//   header   seed u64, tick u64, next_id u64 (ids from joins)
//   zones -> [Zone 24 bytes] x zoneCount, ascending id (binary searched),
//            each with the next_id of what play creates there
//   records -> [Entity 120 bytes] x slotCap; slots [0, slotTop) are taken or
//              free; a free slot's record has id 0
//
// Derived indexes: ids.ts maps id -> slot (kept by create/remove), and
// sync(slot), called after every write that can matter, re-derives
//   spatial.ts    the grid of positions and tags (and spots.ts, exact positions)
//   livingOnline  living online players (npc targets, the npc phase's seeds)
//   wounded       living players and npcs with hp < max_hp (regeneration)
// each set an I32List with a per-slot position column (-1: not a member),
// removal by swap with the last member.
//
// marks are per-slot u32 stamps for "seen in this pass" checks: a pass
// takes a fresh epoch, so nothing is ever cleared.
//
// Slots grow by doubling; every per-slot column grows with them.

import { Entity, Kind, Zone } from "./_generated/schema";
import { clearIds, insertId, removeId, reserveIds, slotOf } from "./ids";
import { grow, growColumn, I32List } from "./mem";
import { clearInterest, dropArea, growInterest } from "./interest";
import { growJournal } from "./journal";
import { orderAdd, clearOrder } from "./order";
import { clearSchedule, schedule } from "./schedule";
import { clearGrid, forgetSlot, growGrid, place, unplace } from "./spatial";

// ---- Header -----------------------------------------------------------------

export let seed: u64 = 0;
export let tick: u64 = 0;
export let nextId: u64 = 1;

export function setHeader(s: u64, t: u64, n: u64): void {
  seed = s; tick = t; nextId = n;
}

export function advanceTick(): u64 {
  return ++tick;
}

/** A player created with a chosen id keeps later ids unique. */
export function claimId(id: u64): void {
  if (id >= nextId) nextId = id + 1;
}

// ---- Zones --------------------------------------------------------------------

let zones: usize = 0;
let zoneCap: i32 = 0;
export let zoneCount: i32 = 0;

@inline export function zoneAt(i: i32): usize { return zones + <usize>i * Zone.SIZE; }

/** Loads `n` packed Zone structs (any order), sorting them by id. */
export function loadZones(src: usize, n: i32): void {
  if (n > zoneCap) {
    zones = grow(zones, 0, <usize>n * Zone.SIZE);
    zoneCap = n;
  }
  zoneCount = 0;
  for (let i = 0; i < n; i++) {
    const z = src + <usize>i * Zone.SIZE;
    assert(Zone.width(z) > 0 && Zone.height(z) > 0, "zone with no cells");
    assert(Zone.spawn_x(z) < Zone.width(z) && Zone.spawn_y(z) < Zone.height(z), "zone spawn outside the zone");
    let j = zoneCount;
    while (j > 0 && Zone.id(zoneAt(j - 1)) > Zone.id(z)) {
      memory.copy(zoneAt(j), zoneAt(j - 1), Zone.SIZE);
      j--;
    }
    assert(j == 0 || Zone.id(zoneAt(j - 1)) != Zone.id(z), "duplicate zone id");
    memory.copy(zoneAt(j), z, Zone.SIZE);
    zoneCount++;
  }
}

/** The zone with this id, or 0. */
export function findZone(id: u32): usize {
  let lo = 0, hi = zoneCount;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const zid = Zone.id(zoneAt(mid));
    if (zid == id) return zoneAt(mid);
    if (zid < id) lo = mid + 1; else hi = mid;
  }
  return 0;
}

// Ids from 2^62 up are what play creates, each zone from its own 2^30 (docs/rules.md
// "Ids"); none reaches 2^63 - 1, PostgreSQL's largest bigint.
export const PLAY_IDS: u64 = <u64>1 << 62;
const ZONE_IDS: u64 = <u64>1 << 30;
const ID_LIMIT: u64 = 0x7FFF_FFFF_FFFF_FFFF;

/** The id for an entity created in `zone` (a Zone record), or 0 once its range is used up. */
export function takeZoneId(zone: usize): u64 {
  const id = Zone.next_id(zone);
  const end = PLAY_IDS + (<u64>Zone.id(zone) + 1) * ZONE_IDS;
  if (id >= min(end, ID_LIMIT)) return 0;
  Zone.set_next_id(zone, id + 1);
  return id;
}

/** The zone an entity is in (it must exist: a world file guarantees it). */
export function zoneOf(p: usize): usize {
  const z = findZone(Entity.zone(p));
  assert(z != 0, "entity in an unknown zone");
  return z;
}

// ---- Slots and records ----------------------------------------------------------

export let records: usize = 0;
let slotCap: i32 = 0;
export let slotTop: i32 = 0;
const freeSlots = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const removedSlots = changetype<I32List>(memory.data(offsetof<I32List>(), 8));

@inline export function rec(slot: i32): usize { return records + <usize>slot * Entity.SIZE; }

export const livingOnline = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
export const wounded = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
let onlinePos: usize = 0;
let woundedPos: usize = 0;

let marks: usize = 0;
let epoch: u32 = 0;

/** A fresh stamp: no slot carries it yet. */
export function newEpoch(): u32 {
  if (++epoch == 0) {
    memory.fill(marks, 0, <usize>slotCap << 2);
    epoch = 1;
  }
  return epoch;
}
@inline export function mark(slot: i32): u32 { return load<u32>(marks + (<usize>slot << 2)); }
@inline export function setMark(slot: i32, e: u32): void { store<u32>(marks + (<usize>slot << 2), e); }

/** Room for at least `n` slots (a load sizes the tables once, not by doubling). */
export function reserveSlots(n: i32): void {
  while (slotCap < n) growSlots();
  reserveIds(n);
}

function growSlots(): void {
  const newCap = slotCap == 0 ? 1024 : slotCap << 1;
  records = grow(records, <usize>slotCap * Entity.SIZE, <usize>newCap * Entity.SIZE);
  onlinePos = growColumn(onlinePos, slotCap, newCap, -1);
  woundedPos = growColumn(woundedPos, slotCap, newCap, -1);
  marks = growColumn(marks, slotCap, newCap, 0);
  growJournal(newCap);
  growInterest(newCap);
  growGrid(newCap, slotTop);
  slotCap = newCap;
}

/** An empty slot: record zeroed, in no index. */
function takeSlot(): i32 {
  let s: i32;
  if (freeSlots.len > 0) {
    s = freeSlots.get(--freeSlots.len);
  } else {
    if (slotTop == slotCap) growSlots();
    s = slotTop++;
  }
  memory.fill(rec(s), 0, Entity.SIZE);
  forgetSlot(s);
  store<i32>(onlinePos + (<usize>s << 2), -1);
  store<i32>(woundedPos + (<usize>s << 2), -1);
  return s;
}

/** Discards the whole world (keeps the memory). */
export function clearWorld(): void {
  slotTop = 0;
  freeSlots.clear();
  removedSlots.clear();
  livingOnline.clear();
  wounded.clear();
  clearIds();
  clearGrid();
  clearInterest(true);
  clearOrder();
  clearSchedule();
}

/** Keeps `set` membership of `slot` equal to `want`. */
function keepMember(set: I32List, pos: usize, slot: i32, want: bool): void {
  const at = pos + (<usize>slot << 2);
  const i = load<i32>(at);
  if (want == (i >= 0)) return;
  if (want) {
    store<i32>(at, set.len);
    set.push(slot);
  } else {
    const moved = set.swapRemove(i);
    if (moved >= 0) store<i32>(pos + (<usize>moved << 2), i);
    store<i32>(at, -1);
  }
}

/** Re-derives every index entry of `slot` from its record. */
export function sync(slot: i32): void {
  const p = rec(slot);
  place(slot);
  const kind = Entity.kind(p);
  const living = Entity.respawn_tick(p) == 0;
  keepMember(livingOnline, onlinePos, slot, kind == Kind.player && living && Entity.online(p) != 0);
  keepMember(wounded, woundedPos, slot, kind != Kind.item && living && Entity.hp(p) < Entity.max_hp(p));
}

/** Loads one record from a frame: a new entity, or replaces the one with its id. Returns its slot. */
export function upsert(src: usize): i32 {
  const id = Entity.id(src);
  assert(id != 0, "entity id 0");
  const kind = Entity.kind(src);
  assert(kind <= Kind.item, "unknown entity kind");
  // World files are validated on reading (docs/rules.md "Value ranges"); the
  // rules that need an entity's zone trap if it has none (zoneOf).
  const z = findZone(Entity.zone(src));
  assert(z == 0 || (Entity.x(src) < Zone.width(z) && Entity.y(src) < Zone.height(z)), "entity outside its zone");
  let slot = slotOf(id);
  if (slot < 0) {
    slot = takeSlot();
    insertId(id, slot);
    orderAdd(id, slot);
  }
  memory.copy(rec(slot), src, Entity.SIZE);
  sync(slot);
  const respawn = Entity.respawn_tick(src);
  if (kind != Kind.item && respawn != 0) schedule(respawn, id, slot);
  return slot;
}

/** A new entity during play: a zeroed record with `id`; the caller fills it and syncs. */
export function createEntity(id: u64): i32 {
  const slot = takeSlot();
  store<u64>(rec(slot), id, 0);
  insertId(id, slot);
  orderAdd(id, slot);
  return slot;
}

/** A traveller back in the world, its record as it was in flight (`src`). Returns its slot. */
export function land(src: usize): i32 {
  const slot = createEntity(Entity.id(src));
  memory.copy(rec(slot), src, Entity.SIZE);
  sync(slot);
  return slot;
}

/**
 * Takes `slot`'s entity out of the world. The record stays readable (the
 * tick's report needs it) until releaseRemoved() frees the slot.
 */
export function removeEntity(slot: i32): void {
  unplace(slot);
  keepMember(livingOnline, onlinePos, slot, false);
  keepMember(wounded, woundedPos, slot, false);
  removeId(Entity.id(rec(slot)));
  removedSlots.push(slot);
}

/**
 * The slot of an entity with `id` removed earlier in this tick, back in the
 * world with its record zeroed but for the id; or -1. A join may bring the
 * id back: the id then names one entity that changed, not one removed and
 * one created (docs/rules.md "What a tick reports" goes by id).
 */
export function reclaim(id: u64): i32 {
  for (let i = 0; i < removedSlots.len; i++) {
    const s = removedSlots.get(i);
    if (Entity.id(rec(s)) != id) continue;
    removedSlots.swapRemove(i);
    memory.fill(rec(s) + 8, 0, Entity.SIZE - 8);
    insertId(id, s);
    return s;
  }
  return -1;
}

/** Frees the slots removed this tick (after the tick has been reported). */
export function releaseRemoved(): void {
  for (let i = 0; i < removedSlots.len; i++) {
    const s = removedSlots.get(i);
    dropArea(s);   // a traveller's, in flight: the next holder of the slot starts with none
    store<u64>(rec(s), 0, 0);
    freeSlots.push(s);
  }
  removedSlots.clear();
}

/** Whether `slot` currently holds the entity `id` (validates stale references). */
@inline export function holds(slot: i32, id: u64): bool {
  return slot >= 0 && slot < slotTop && Entity.id(rec(slot)) == id && slotOf(id) == slot;
}
