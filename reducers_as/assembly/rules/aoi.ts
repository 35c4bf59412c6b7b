// 6. Area-of-interest effects (docs/rules.md "Area of interest").
//
// An entity is visible to a player P when it exists, is in P's zone within
// distance 10, and is not an offline player. For every player online at the
// end of the tick, V_old is what it saw at the start (empty if it was not
// online or did not exist) and V_new what it sees at the end:
//   enter  V_new - V_old;  leave  V_old - V_new;
//   update in both, and its record changed in any field but last_seq.
//
// Computed from the journal, never from the world:
// - A *moving* observer (new, or its zone, x, y or online changed) has both
//   views diffed. Untouched entities look as they did at the start, so only
//   those in exactly one of the two views matter (enter or leave); journaled
//   entities come from the journal grid, by old and by current position.
// - A *still* observer's view can only change through journaled entities,
//   so for each entity that was created, removed or visibly changed, the
//   still observers near its old and new positions classify it.
// The two observer kinds are disjoint and each (observer, entity) pair is
// produced once; the pairs are then sorted by (observer id, entity id).

import { EffectKind } from "../_generated/schema";
import { CREATED, entryFlags, entrySlot, journalIndex, journalLength, REMOVED } from "../journal";
import {
  buildJournalGrid, CHANGED, NOW, OLD, PLAYER_ENTRY, queryJournal, SAW, SEES, setStamp, spotNear,
  spotX, spotY, spotZone, stamp, summaryBits, summaryId, WATCHED,
} from "../journalgrid";
import { I32List } from "../mem";
import { views } from "../output";
import { sortKeys } from "../sort";
import { nodeId, nodeX, nodeY, nodeZone, ONLINE, PLAYER, query, queryBox, queryXor, VISIBLE } from "../spatial";
import { mark, newEpoch, setMark } from "../world";

const VIEW: i32 = 10;

const found = changetype<I32List>(memory.data(offsetof<I32List>(), 8));

/** Whether journal entry j is a player that is new or changed zone, x, y or online. */
@inline function movingEntry(j: i32): bool {
  if (entryFlags(j) & CREATED) return true;
  const bits = summaryBits(j);
  return spotZone(OLD, j) != spotZone(NOW, j) || spotX(OLD, j) != spotX(NOW, j)
    || spotY(OLD, j) != spotY(NOW, j) || ((bits & SAW) != 0) != ((bits & SEES) != 0);
}

/** Whether the online player in `slot` is a moving observer. */
@inline function moving(slot: i32): bool {
  const j = journalIndex(slot);
  return j >= 0 && movingEntry(j);
}

/** The effect, if any, of an entity seen before (`was`) and now (`is`). */
@inline function sight(observer: u64, entity: u64, was: bool, is: bool, changed: bool): void {
  if (was && is) {
    if (changed) views.push(observer, entity, EffectKind.update);
  } else if (is) {
    views.push(observer, entity, EffectKind.enter);
  } else if (was) {
    views.push(observer, entity, EffectKind.leave);
  }
}

export function areaOfInterest(): void {
  const n = journalLength();
  if (n == 0) return;
  buildJournalGrid();
  for (let j = 0; j < n; j++) {
    const bits = summaryBits(j);
    // An observer: a player online at the end (SEES: exists, not offline).
    if ((bits & PLAYER_ENTRY) && (bits & SEES) && movingEntry(j)) observe(j);
  }
  for (let j = 0; j < n; j++) {
    const flags = entryFlags(j);
    const born = (flags & CREATED) != 0, gone = (flags & REMOVED) != 0;
    if (born != gone || (summaryBits(j) & CHANGED)) watch(j);
  }
  sortKeys(views);
}

/** Both views of the moving observer of journal entry j, diffed. */
function observe(j: i32): void {
  const epoch = newEpoch();
  const id = summaryId(j);
  const zone = spotZone(NOW, j), x = spotX(NOW, j), y = spotY(NOW, j);
  // It had a view at the start only if it was an online player then (an id
  // can pass from a removed item to a new player within one tick).
  const before = (summaryBits(j) & WATCHED) != 0;
  const oz = spotZone(OLD, j), ox = spotX(OLD, j), oy = spotY(OLD, j);

  // Untouched entities: enter what is only in the new view, leave what is
  // only in the old one.
  found.clear();
  if (before && oz == zone) {
    queryXor(zone, ox, oy, x, y, VIEW, VISIBLE, found);
  } else {
    query(zone, x, y, VIEW, VISIBLE, found);
    if (before) query(oz, ox, oy, VIEW, VISIBLE, found);
  }
  for (let k = 0; k < found.len; k++) {
    const s = found.get(k);
    if (journalIndex(s) >= 0) continue;
    const seesNow = nodeZone(s) == zone && abs(nodeX(s) - x) <= VIEW && abs(nodeY(s) - y) <= VIEW;
    views.push(id, nodeId(s), seesNow ? EffectKind.enter : EffectKind.leave);
  }

  // Journaled entities near where it stood or stands.
  found.clear();
  if (before) queryJournal(OLD, oz, ox, oy, VIEW, found);
  queryJournal(NOW, zone, x, y, VIEW, found);
  for (let k = 0; k < found.len; k++) {
    const e = found.get(k);
    if (stamp(e) == epoch) continue;
    setStamp(e, epoch);
    const bits = summaryBits(e);
    const was = before && (bits & SAW) != 0 && spotNear(OLD, e, oz, ox, oy, VIEW);
    const is = (bits & SEES) != 0 && spotNear(NOW, e, zone, x, y, VIEW);
    sight(id, summaryId(e), was, is, (bits & CHANGED) != 0);
  }
}

/** What the still observers near the entity of journal entry j see of it. */
function watch(j: i32): void {
  const epoch = newEpoch();
  const flags = entryFlags(j);
  const bits = summaryBits(j);
  const before = !(flags & CREATED), after = !(flags & REMOVED);
  const id = summaryId(j);
  found.clear();
  if (before && after && spotZone(OLD, j) == spotZone(NOW, j)) {
    // One box around both positions (usually a step apart) finds them all.
    const ox = spotX(OLD, j), oy = spotY(OLD, j), nx = spotX(NOW, j), ny = spotY(NOW, j);
    queryBox(spotZone(NOW, j), min(ox, nx) - VIEW, min(oy, ny) - VIEW, max(ox, nx) + VIEW, max(oy, ny) + VIEW,
      PLAYER | ONLINE, found);
  } else {
    if (before) query(spotZone(OLD, j), spotX(OLD, j), spotY(OLD, j), VIEW, PLAYER | ONLINE, found);
    if (after) query(spotZone(NOW, j), spotX(NOW, j), spotY(NOW, j), VIEW, PLAYER | ONLINE, found);
  }
  for (let k = 0; k < found.len; k++) {
    const s = found.get(k);
    if (mark(s) == epoch) continue;
    setMark(s, epoch);
    if (moving(s)) continue;
    const zone = nodeZone(s), x = nodeX(s), y = nodeY(s);
    const was = (bits & SAW) != 0 && spotNear(OLD, j, zone, x, y, VIEW);
    const is = (bits & SEES) != 0 && spotNear(NOW, j, zone, x, y, VIEW);
    sight(nodeId(s), id, was, is, (bits & CHANGED) != 0);
  }
}
