// 6. Area-of-interest effects (docs/rules.md "Area of interest").
//
// A player's area of interest is itself and the 31 visible entities nearest
// to it within distance 10 in its zone (by distance, then id); an offline
// player is invisible. For every player online at the end of the tick,
// V_old is its area at the start (empty if it was not online) and V_new its
// area at the end:
//   enter  V_new - V_old;  leave  V_old - V_new;
//   update in both, and its record changed in any field but last_seq.
//
// Nothing here scans the world, and nothing costs the square of a crowd:
// - every online player's area is kept between ticks (interest.ts), with its
//   radius: nothing nearer is outside it, nothing farther inside. The marks
//   (marks.ts) are where a presence differs between the two ends of the tick;
// - an observer that is new, came online or moved, or that has a mark within
//   its radius, is searched again (areaAround) and its two areas diffed;
// - every other observer's area is unchanged: it gets an update for each
//   changed entity it watches, found through that entity's watchers.
// The pairs are then sorted by (observer id, entity id).

import { EffectKind, Entity, Kind, Zone } from "../_generated/schema";
import {
  addMember, areaCount, areaMembers, areaOf, areaRadius, clearInterest, dropArea, edgeNext, edgeObserver,
  firstWatcher, markSearched, memberAt, MEMBERS, newArea, newPass, removeMember, replaceMember, searchedIn, setArea,
  setRadius,
} from "../interest";
import { entrySlot, journalIndex, journalLength } from "../journal";
import {
  buildMarks, CHANGED, markedCellCount, markedCellX, markedCellY, markedCellZone, markNear, PLAYER_ENTRY, SAW,
  sameSpot, SEES, summaryBits,
} from "../marks";
import { I32List, KeyList } from "../mem";
import { views } from "../output";
import { sortKeys } from "../sort";
import {
  CELL_SHIFT, nodeId, nodeTags, nodeX, nodeY, nodeZone, ONLINE, PLAYER, population, query, queryBox, queryVisible,
  VISIBLE,
} from "../spatial";
import { spotHead, spotNext } from "../spots";
import { findZone, mark, newEpoch, rec, setMark, slotTop } from "../world";

const SIGHT: i32 = 10;
const OTHERS: i32 = MEMBERS - 1;   // an area: the observer and its 31 nearest
const CELL: i32 = 1 << CELL_SHIFT;  // spatial.ts's coarse cells
// Rings win once the entities in the cells around, squared, pass this times the cells' count: walking
// costs each entity in them, rings about 3x as much per position, and 32 / density positions.
const RING_FACTOR: u64 = 96 * <u64>(CELL * CELL);

const members = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const found = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const again = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const newcomers = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const leavers = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const cursors = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const nearest = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const ties = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const byDistance = memory.data(<i32>(SIGHT + 1) << 2, 4);
const heard = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));

/**
 * The area of interest of the online player in `slot`, in the world as it
 * stands, into `members` (the player first); returns its radius.
 */
function areaAround(slot: i32): i32 {
  const zone = nodeZone(slot), x = nodeX(slot), y = nodeY(slot);
  const walk = population(zone, x, y, SIGHT, VISIBLE);
  // Walking the cells costs every entity in them; rings cost a lookup per
  // position out to the radius, about 32 / density of them.
  if (<u64>walk * <u64>walk <= RING_FACTOR * <u64>cellsAround(x, y)) return walkCells(slot, zone, x, y);
  members.clear();
  members.push(slot);
  return ringByRing(slot, zone, x, y);
}

/** How many coarse cells a search around (x, y) covers. */
@inline function cellsAround(x: i32, y: i32): u32 {
  const w = ((x + SIGHT) >> CELL_SHIFT) - (max(x - SIGHT, 0) >> CELL_SHIFT) + 1;
  const h = ((y + SIGHT) >> CELL_SHIFT) - (max(y - SIGHT, 0) >> CELL_SHIFT) + 1;
  return <u32>(w * h);
}

/**
 * areaAround from the coarse cells: every visible entity within SIGHT,
 * counted by distance; those nearer than the cut distance are in, and at
 * the cut, the lowest ids.
 */
function walkCells(slot: i32, zone: u32, x: i32, y: i32): i32 {
  queryVisible(slot, zone, x, y, SIGHT, nearest, byDistance);
  return nearestOf(slot);
}

/**
 * `slot` and the 31 nearest of the candidates in `nearest` (counted by
 * distance in `byDistance`) into `members`: those nearer than the cut
 * distance, and at the cut the lowest ids. Returns the radius.
 */
function nearestOf(slot: i32): i32 {
  members.clear();
  members.push(slot);
  if (nearest.len < OTHERS) {
    for (let k = 0; k < nearest.len; k++) members.push(<i32>nearest.v(k));
    return SIGHT;
  }
  let cut = 0, nearer = 0;
  while (nearer + load<i32>(byDistance + (<usize>cut << 2)) < OTHERS) {
    nearer += load<i32>(byDistance + (<usize>cut << 2));
    cut++;
  }
  ties.clear();
  for (let k = 0; k < nearest.len; k++) {
    const d = <i32>nearest.a(k);
    if (d < cut) members.push(<i32>nearest.v(k));
    else if (d == cut) ties.push(0, nearest.b(k), nearest.v(k));
  }
  sortKeys(ties);
  for (let k = 0; k < OTHERS - nearer; k++) members.push(<i32>ties.v(k));
  return cut;
}

/**
 * areaAround in a crowd: rings of positions at distance 0, 1, 2..., out to
 * where the area is full. Each position's entities are listed in ascending
 * id, so a ring's lowest ids come from merging its positions' lists, and no
 * list is read further than the ids the area still needs.
 */
function ringByRing(slot: i32, zone: u32, x: i32, y: i32): i32 {
  const z = findZone(zone);
  const width = <i32>Zone.width(z), height = <i32>Zone.height(z);
  for (let d = 0; d <= SIGHT; d++) {
    cursors.clear();
    if (d == 0) {
      enter(slot, zone, x, y);
    } else {
      const left = max(x - d, 0), right = min(x + d, width - 1);
      for (let c = left; c <= right; c++) {
        if (y - d >= 0) enter(slot, zone, c, y - d);
        if (y + d < height) enter(slot, zone, c, y + d);
      }
      const top = max(y - d + 1, 0), bottom = min(y + d - 1, height - 1);
      for (let r = top; r <= bottom; r++) {
        if (x - d >= 0) enter(slot, zone, x - d, r);
        if (x + d < width) enter(slot, zone, x + d, r);
      }
    }
    while (cursors.len > 0 && members.len < MEMBERS) {
      let best = 0, bestId = nodeId(cursors.get(0));
      for (let i = 1; i < cursors.len; i++) {
        const id = nodeId(cursors.get(i));
        if (id < bestId) { best = i; bestId = id; }
      }
      const s = cursors.get(best);
      members.push(s);
      const next = after(slot, s);
      if (next >= 0) cursors.set(best, next); else cursors.swapRemove(best);
    }
    if (members.len == MEMBERS) return d;
  }
  return SIGHT;
}

/** The first entity listed at (x, y), the searching `slot` aside, becomes a cursor of the merge. */
@inline function enter(slot: i32, zone: u32, x: i32, y: i32): void {
  let s = spotHead(zone, x, y);
  if (s == slot) s = spotNext(s);
  if (s >= 0) cursors.push(s);
}

/** The entity listed after `s` at its position, the searching `slot` aside, or -1. */
@inline function after(slot: i32, s: i32): i32 {
  const next = spotNext(s);
  return next == slot ? spotNext(next) : next;
}

/** Who hears the speaker in `slot` now: the online players of its area of interest, ascending id. */
export function listeners(slot: i32): KeyList {
  areaAround(slot);
  heard.clear();
  // Visible players are online players.
  for (let k = 0; k < members.len; k++) {
    const s = members.get(k);
    if (nodeTags(s) & PLAYER) heard.push(0, nodeId(s), 0);
  }
  sortKeys(heard);
  return heard;
}

@inline function keep(slot: i32, radius: i32): void {
  setArea(slot, members.ptr, members.len, radius);
}

/** Searches every online player's area afresh (a loaded world, or areas gone stale). */
export function watchAll(): void {
  clearInterest(true);
  for (let s = 0; s < slotTop; s++) {
    const p = rec(s);
    if (Entity.id(p) != 0 && Entity.kind(p) == Kind.player && Entity.online(p) != 0) keep(s, areaAround(s));
  }
}

/**
 * After entities were loaded between ticks (project without replace): the
 * areas near where they were or are visible (`spots`, packed (zone, x, y)
 * keys in `a`), and those of the loaded players (`players`), are searched
 * again. A loaded player that is offline keeps none.
 */
export function watchAround(spots: KeyList, players: I32List): void {
  const epoch = newEpoch();
  again.clear();
  for (let i = 0; i < spots.len; i++) {
    const key = spots.a(i);
    found.clear();
    query(<u32>(key >> 32), <i32>((key >> 16) & 0xffff), <i32>(key & 0xffff), SIGHT, PLAYER | ONLINE, found);
    for (let k = 0; k < found.len; k++) again.push(found.get(k));
  }
  for (let i = 0; i < players.len; i++) {
    const s = players.get(i);
    if (Entity.online(rec(s)) != 0) again.push(s); else dropArea(s);
  }
  for (let i = 0; i < again.len; i++) {
    const s = again.get(i);
    if (mark(s) == epoch) continue;
    setMark(s, epoch);
    keep(s, areaAround(s));
  }
}

/** Whether the entity in `slot` changed this tick (in any field but last_seq). */
@inline function changed(slot: i32): bool {
  const j = journalIndex(slot);
  return j >= 0 && (summaryBits(j) & CHANGED) != 0;
}

export function areaOfInterest(): void {
  const n = journalLength();
  if (n == 0) return;
  // Observers that can see a mark stand in the cells within SIGHT of it.
  buildMarks((SIGHT + CELL - 1) >> CELL_SHIFT);
  const pass = newPass();
  again.clear();
  // Observers that are new, came online or moved; no area for those not online now.
  for (let j = 0; j < n; j++) {
    const s = entrySlot(j), bits = summaryBits(j);
    if (!(bits & PLAYER_ENTRY) || !(bits & SEES)) {
      dropArea(s);
    } else if (areaOf(s) < 0 || !(bits & SAW) || !sameSpot(j)) {
      markSearched(s, pass);
      again.push(s);
    }
  }
  // Observers that stood still with a mark within their radius.
  for (let i = 0, cells = markedCellCount(); i < cells; i++) {
    const zone = markedCellZone(i), left = markedCellX(i) * CELL, top = markedCellY(i) * CELL;
    found.clear();
    queryBox(zone, left, top, left + CELL - 1, top + CELL - 1, PLAYER | ONLINE, found);
    for (let k = 0; k < found.len; k++) {
      const s = found.get(k);
      if (searchedIn(s) == pass || !markNear(zone, nodeX(s), nodeY(s), areaRadius(s))) continue;
      markSearched(s, pass);
      again.push(s);
    }
  }
  for (let i = 0; i < again.len; i++) {
    const s = again.get(i);
    keepDiff(s, areaAround(s));
  }
  // Everyone else sees what it saw: the changed entities it watches are updates.
  for (let j = 0; j < n; j++) {
    if (!(summaryBits(j) & CHANGED)) continue;
    const s = entrySlot(j), id = nodeId(s);
    for (let e = firstWatcher(s); e >= 0; e = edgeNext(e)) {
      const o = edgeObserver(e);
      if (searchedIn(o) != pass) views.push(nodeId(o), id, EffectKind.update);
    }
  }
  sortKeys(views);
}

/**
 * Diffs the observer in `slot`'s area at the start of the tick with its area
 * now (`members`, with this radius), and keeps the new one: members in both
 * keep their place, leavers' places go to newcomers.
 */
function keepDiff(slot: i32, radius: i32): void {
  const id = nodeId(slot);
  if (areaOf(slot) < 0) newArea(slot, radius);
  const had = areaCount(slot), old = areaMembers(slot);
  const before = newEpoch();
  for (let k = 0; k < had; k++) setMark(memberAt(old, k), before);
  const both = newEpoch();
  newcomers.clear();
  for (let k = 0; k < members.len; k++) {
    const m = members.get(k);
    if (mark(m) == before) {
      setMark(m, both);
      if (changed(m)) views.push(id, nodeId(m), EffectKind.update);
    } else {
      views.push(id, nodeId(m), EffectKind.enter);
      newcomers.push(m);
    }
  }
  let next = 0;
  leavers.clear();
  for (let k = 0; k < had; k++) {
    const m = memberAt(old, k);
    if (mark(m) == both) continue;
    views.push(id, nodeId(m), EffectKind.leave);
    if (next < newcomers.len) replaceMember(slot, k, newcomers.get(next++));
    else leavers.push(k);
  }
  while (next < newcomers.len) addMember(slot, newcomers.get(next++));
  // Highest place first: the last member moving into a hole is never one still to go.
  for (let i = leavers.len - 1; i >= 0; i--) removeMember(slot, leavers.get(i));
  setRadius(slot, radius);
}
