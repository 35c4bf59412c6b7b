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
  areaCount, areaMember, areaOf, areaRadius, clearInterest, dropArea, edgeMember, edgeNext, edgeObserver,
  firstWatcher, markSearched, MEMBERS, newPass, searchedIn, setArea,
} from "../interest";
import { entrySlot, journalIndex, journalLength } from "../journal";
import {
  buildMarks, CHANGED, markedCells, markedCellX, markedCellY, markedCellZone, markNear, PLAYER_ENTRY, SAW,
  sameSpot, SEES, summaryBits,
} from "../marks";
import { I32List, KeyList } from "../mem";
import { views } from "../output";
import { sortKeys } from "../sort";
import { nodeId, nodeTags, nodeX, nodeY, nodeZone, ONLINE, PLAYER, population, query, queryBox, VISIBLE } from "../spatial";
import { spotHead, spotNext } from "../spots";
import { findZone, mark, newEpoch, rec, setMark, slotTop } from "../world";

const SIGHT: i32 = 10;
const OTHERS: i32 = MEMBERS - 1;   // an area: the observer and its 31 nearest
const DENSE: u32 = 128;            // more entities than this in the cells around: search ring by ring
const CELL: i32 = 16;              // spatial.ts's coarse cells

const members = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const found = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const again = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const nearest = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const heard = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));

/**
 * The area of interest of the online player in `slot`, in the world as it
 * stands, into `members` (the player first); returns its radius.
 */
function areaAround(slot: i32): i32 {
  const zone = nodeZone(slot), x = nodeX(slot), y = nodeY(slot);
  members.clear();
  members.push(slot);
  nearest.clear();
  if (population(zone, x, y, SIGHT, VISIBLE) <= DENSE) {
    found.clear();
    query(zone, x, y, SIGHT, VISIBLE, found);
    for (let k = 0; k < found.len; k++) {
      const s = found.get(k);
      if (s == slot) continue;
      const d = max(abs(nodeX(s) - x), abs(nodeY(s) - y));
      nearest.push(<u64>d, nodeId(s), <u64>s);
    }
    if (nearest.len < OTHERS) {
      for (let k = 0; k < nearest.len; k++) members.push(<i32>nearest.v(k));
      return SIGHT;
    }
    // Full: the nearest by (distance, id), the last of them the farthest.
    sortKeys(nearest);
    for (let k = 0; k < OTHERS; k++) members.push(<i32>nearest.v(k));
    return <i32>nearest.a(OTHERS - 1);
  }
  return ringByRing(slot, zone, x, y);
}

/**
 * areaAround in a crowd: rings of positions at distance 0, 1, 2..., each
 * position giving at most as many of its (ascending) ids as are still needed.
 */
function ringByRing(slot: i32, zone: u32, x: i32, y: i32): i32 {
  const z = findZone(zone);
  const width = <i32>Zone.width(z), height = <i32>Zone.height(z);
  for (let d = 0; d <= SIGHT; d++) {
    const need = MEMBERS - members.len;
    nearest.clear();
    if (d == 0) {
      take(slot, zone, x, y, need);
    } else {
      const left = max(x - d, 0), right = min(x + d, width - 1);
      for (let c = left; c <= right; c++) {
        if (y - d >= 0) take(slot, zone, c, y - d, need);
        if (y + d < height) take(slot, zone, c, y + d, need);
      }
      const top = max(y - d + 1, 0), bottom = min(y + d - 1, height - 1);
      for (let r = top; r <= bottom; r++) {
        if (x - d >= 0) take(slot, zone, x - d, r, need);
        if (x + d < width) take(slot, zone, x + d, r, need);
      }
    }
    if (nearest.len > need) sortKeys(nearest);
    const n = min(nearest.len, need);
    for (let k = 0; k < n; k++) members.push(<i32>nearest.v(k));
    if (members.len == MEMBERS) return d;
  }
  return SIGHT;
}

/** Up to `need` of the lowest ids at (x, y), the searching `slot` aside, into `nearest`. */
@inline function take(slot: i32, zone: u32, x: i32, y: i32, need: i32): void {
  let taken = 0;
  for (let s = spotHead(zone, x, y); s >= 0 && taken < need; s = spotNext(s)) {
    if (s == slot) continue;
    nearest.push(0, nodeId(s), <u64>s);
    taken++;
  }
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
  buildMarks();
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
  for (let i = 0; i < markedCells.len; i++) {
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
  for (let i = 0; i < again.len; i++) searchAgain(again.get(i));
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

/** Diffs the observer in `slot`'s area at the start of the tick with its area now, and keeps the new one. */
function searchAgain(slot: i32): void {
  const id = nodeId(slot);
  const radius = areaAround(slot);
  const had = areaOf(slot) >= 0 ? areaCount(slot) : 0;
  const before = newEpoch();
  for (let k = 0; k < had; k++) setMark(areaMember(slot, k), before);
  const both = newEpoch();
  for (let k = 0; k < members.len; k++) {
    const m = members.get(k);
    if (mark(m) == before) {
      setMark(m, both);
      if (changed(m)) views.push(id, nodeId(m), EffectKind.update);
    } else {
      views.push(id, nodeId(m), EffectKind.enter);
    }
  }
  for (let k = 0; k < had; k++) {
    const m = areaMember(slot, k);
    if (mark(m) != both) views.push(id, nodeId(m), EffectKind.leave);
  }
  keep(slot, radius);
}
