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
//
// A traveller is in no zone from its travel to its arrival: its area is
// itself alone. It departs still an observer (its slot, removed, holds its
// record in flight until the tick ends) and arrives with that area.

import { EffectKind, Entity, Kind } from "../_generated/schema";
import {
  addMember, areaCount, areaMembers, areaOf, areaRadius, clearInterest, dropArea, edgeNext, edgeObserver,
  firstWatcher, markSearched, memberAt, MEMBERS, newArea, newPass, removeMember, replaceMember, searchedIn, setArea,
  setRadius,
} from "../interest";
import { DEPARTED, entryFlags, entrySlot, journalIndex, journalLength } from "../journal";
import {
  buildMarks, CHANGED, markedCellCount, markedCellX, markedCellY, markedCellZone, markNear, PLAYER_ENTRY, SAW,
  sameSpot, SEES, summaryBits,
} from "../marks";
import { I32List, KeyList, U64Map } from "../mem";
import { nearestDistances, nearestSlots, nearestTo, SIGHT } from "../nearest";
import { views } from "../output";
import { sortKeys } from "../sort";
import { CELL_SHIFT, nodeId, nodeTags, nodeX, nodeY, nodeZone, ONLINE, PLAYER, query, queryBox } from "../spatial";
import { spotKey, standsAlone } from "../spots";
import { mark, newEpoch, rec, setMark, slotTop } from "../world";

const OTHERS: i32 = MEMBERS - 1;   // an area: the observer and its 31 nearest

const members = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const found = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const again = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const newcomers = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const leavers = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const heard = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
// Within one pass over a world that stands still: the 32 nearest to each position searched from.
const searchedSpots = changetype<U64Map>(memory.data(offsetof<U64Map>(), 8));
const nearestThere = changetype<I32List>(memory.data(offsetof<I32List>(), 8));

/**
 * The area of interest of the online player in `slot`, in the world as it
 * stands, into `members` (the player first); returns its radius.
 */
function areaAround(slot: i32): i32 {
  const radius = nearestTo(nodeZone(slot), nodeX(slot), nodeY(slot), OTHERS, slot, -1);
  members.clear();
  members.push(slot);
  for (let k = 0; k < nearestSlots.len; k++) members.push(nearestSlots.get(k));
  return radius;
}

/**
 * areaAround within a pass over a world that does not change meanwhile:
 * observers standing on one position share one search, of the 32 nearest
 * there (whoever searches is then one of them, or not), remembered in
 * `searchedSpots` until forgetSearches(). In a crowd many stand together.
 */
function areaInPass(slot: i32): i32 {
  const zone = nodeZone(slot), x = nodeX(slot), y = nodeY(slot);
  // The observer's last radius, one step farther (it may have moved): where to look.
  const reach = areaOf(slot) >= 0 ? min(areaRadius(slot) + 1, SIGHT) : -1;
  if (standsAlone(slot)) {
    // No one else searches from here: the 32 nearest are the observer and its area.
    const radius = nearestTo(zone, x, y, MEMBERS, -1, reach);
    const n = nearestSlots.len;
    members.reserve(n + 1);
    store<i32>(members.ptr, slot);
    let to = members.ptr + 4;
    for (let k = 0; k < n; k++) {
      const s = nearestSlots.get(k);
      store<i32>(to, s);
      to += <usize>(s != slot) << 2;
    }
    members.len = <i32>((to - members.ptr) >> 2);
    return radius;
  }
  const key = spotKey(zone, x, y);
  let at = searchedSpots.get(key);
  if (at < 0) {
    nearestTo(zone, x, y, MEMBERS, -1, reach);
    at = nearestThere.len;
    searchedSpots.set(key, at);
    remember();
  }
  // Whoever stands here is at distance 0: if it is not among the 32, its area is
  // the 31 nearest of them (all but the farthest); if it is, the other 31.
  const n = nearestThere.get(at), farthest = nearestThere.get(at + 1);
  const listed = at + SPOT_HEAD;
  let self = -1;
  for (let k = 0; k < n && nearestThere.get(listed + 2 * k + 1) == 0; k++) {
    if (nearestThere.get(listed + 2 * k) == slot) self = k;
  }
  const skip = self >= 0 ? self : n == MEMBERS ? farthest : -1;
  members.reserve(n + 1);
  store<i32>(members.ptr, slot);
  let to = members.ptr + 4;
  const pairs = nearestThere.ptr + (<usize>listed << 2);
  for (let k = 0; k < n; k++) {
    store<i32>(to, load<i32>(pairs + (<usize>k << 3)));
    to += <usize>(k != skip) << 2;
  }
  members.len = <i32>((to - members.ptr) >> 2);
  if (members.len < MEMBERS) return SIGHT;
  // The farthest left in: the list's farthest, or when that one is skipped, the next.
  return skip == farthest ? nearestThere.get(at + 3) : nearestThere.get(at + 2);
}

// A remembered search in `nearestThere`: its count, the index of its farthest entity (by
// distance, then id), that one's distance, the farthest distance of the others, then the
// (slot, distance) pairs, those at distance 0 first.
const SPOT_HEAD: i32 = 4;

/** Keeps the search just made (nearestSlots) in `nearestThere`, those at distance 0 first. */
function remember(): void {
  const n = nearestSlots.len, slots = nearestSlots.ptr, distances = nearestDistances.ptr;
  let farthest = -1, farthestD = -1, farthestId: u64 = 0, second = -1, zeros = 0;
  for (let k = 0; k < n; k++) {
    const d = load<i32>(distances + (<usize>k << 2)), id = nodeId(load<i32>(slots + (<usize>k << 2)));
    if (d > farthestD || (d == farthestD && id > farthestId)) {
      second = farthestD; farthest = k; farthestD = d; farthestId = id;
    } else {
      second = max(second, d);
    }
    zeros += <i32>(d == 0);
  }
  const at = nearestThere.len;
  nearestThere.reserve(at + SPOT_HEAD + 2 * n);
  const head = nearestThere.ptr + (<usize>at << 2);
  // Distance 0 first, so an observer finds itself among few.
  store<i32>(head, -1, 4);
  let near = head + (<usize>SPOT_HEAD << 2), far = near + (<usize>zeros << 3);
  for (let k = 0; k < n; k++) {
    const d = load<i32>(distances + (<usize>k << 2));
    const to = d == 0 ? near : far;
    if (k == farthest) store<i32>(head, <i32>((to - head) >> 3) - (SPOT_HEAD >> 1), 4);
    store<i32>(to, load<i32>(slots + (<usize>k << 2)));
    store<i32>(to, d, 4);
    if (d == 0) near += 8; else far += 8;
  }
  store<i32>(head, n);
  store<i32>(head, farthestD, 8);
  store<i32>(head, second, 12);
  nearestThere.len = at + SPOT_HEAD + 2 * n;
}

/** Starts a pass: nothing searched yet, room for `observers` searches. */
function forgetSearches(observers: i32): void {
  searchedSpots.reset(observers);
  nearestThere.clear();
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
  forgetSearches(slotTop);
  for (let s = 0; s < slotTop; s++) {
    const p = rec(s);
    if (Entity.id(p) != 0 && Entity.kind(p) == Kind.player && Entity.online(p) != 0) keep(s, areaInPass(s));
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

/** Whether the player in `slot` left its zone this tick. */
@inline function departed(slot: i32): bool {
  const j = journalIndex(slot);
  return j >= 0 && (entryFlags(j) & DEPARTED) != 0;
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
  const CELL = 1 << CELL_SHIFT;
  buildMarks((SIGHT + CELL - 1) >> CELL_SHIFT);
  const pass = newPass();
  again.clear();
  // Observers that are new, came online or moved; no area for those not online now.
  for (let j = 0; j < n; j++) {
    const s = entrySlot(j), bits = summaryBits(j);
    if (entryFlags(j) & DEPARTED) {
      markSearched(s, pass);
      again.push(s);
    } else if (!(bits & PLAYER_ENTRY) || !(bits & SEES)) {
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
  forgetSearches(again.len);
  for (let i = 0; i < again.len; i++) {
    const s = again.get(i);
    if (departed(s)) {
      members.clear();
      members.push(s);
      keepDiff(s, 0);
    } else {
      keepDiff(s, areaInPass(s));
    }
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
