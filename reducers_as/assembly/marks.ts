// The tick's journal as the area of interest needs it, built once after the
// last rule: a compact summary of each entry, and the *marks*, the
// positions where an entity's presence (visible or not, and where) differs
// between the start and the end of the tick. An observer that stood still
// can only see something else if a mark lies within its radius
// (docs/rules.md, "Area of interest").
//
//   summaries -> +------------------------------+------------------------------+
//                | OLD: zone u32, x u16, y u16  | NOW: zone u32, x u16, y u16  |
//                +------------------------------+---------------+--------------+
//                | id u64                       | bits u32      | pad 4        |
//                +------------------------------+---------------+--------------+
//                32 bytes per journal entry
//   marks, by coarse cell: starts -> [u32] x (2^bits + 1), items -> [u64 spot key], bucketed
//   marks, exactly: a set of spot keys (open addressing, EMPTY: free)
//   cells -> the coarse cells near a mark, each once
//
// bits: SAW      it existed at the start and was not an offline player then,
//       SEES     it exists now and is not an offline player,
//       CHANGED  it had a record at both ends (in the world or in flight) and
//                it changed in a field other than last_seq (an `update` where
//                it is seen both times),
//       PLAYER_ENTRY  it is a player now.

import { Entity, Kind } from "./_generated/schema";
import {
  ARRIVED, CREATED, DEPARTED, entryFlags, entryOld, entrySlot, journalLength, REMOVED, sameExceptSeq,
} from "./journal";
import { alloc, ByteBuf, pow2AtLeast, U64Map } from "./mem";
import { CELL_SHIFT, cellBucket } from "./spatial";
import { spotKey } from "./spots";
import { rec } from "./world";

export const OLD: i32 = 0;
export const NOW: i32 = 1;
export const SAW: u32 = 1;
export const SEES: u32 = 2;
export const CHANGED: u32 = 4;
export const PLAYER_ENTRY: u32 = 8;

const SUMMARY: usize = 32;
const summaries = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
const spots = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));    // the marks, as found
const items = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));    // the marks, by bucket
// The coarse cells near a mark (buildMarks), each once: (zone, cx, cy) packed as u64.
const markedCells = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
const own = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
const cellSet = changetype<U64Map>(memory.data(offsetof<U64Map>(), 8));
const exact = changetype<U64Map>(memory.data(offsetof<U64Map>(), 8));
let starts: usize = 0;
let startCap: usize = 0;
let bits: u64 = 0;
let marks: i32 = 0;

@inline function summary(j: i32): usize { return summaries.ptr + <usize>j * SUMMARY; }
@inline function spot(which: i32, j: i32): usize { return summary(j) + (<usize>which << 3); }
@inline export function spotZone(which: i32, j: i32): u32 { return load<u32>(spot(which, j)); }
@inline export function spotX(which: i32, j: i32): i32 { return <i32>load<u16>(spot(which, j), 4); }
@inline export function spotY(which: i32, j: i32): i32 { return <i32>load<u16>(spot(which, j), 6); }
@inline export function sameSpot(j: i32): bool { return load<u64>(spot(OLD, j)) == load<u64>(spot(NOW, j)); }
@inline export function summaryBits(j: i32): u32 { return load<u32>(summary(j), 24); }

@inline function notOffline(p: usize): bool {
  return Entity.kind(p) != Kind.player || Entity.online(p) != 0;
}

@inline function startAt(i: usize): usize { return starts + (i << 2); }
@inline function keyZone(k: u64): u32 { return <u32>(k >> 32); }
@inline function keyX(k: u64): i32 { return <i32>((k >> 16) & 0xffff); }
@inline function keyY(k: u64): i32 { return <i32>(k & 0xffff); }
@inline function bucketOfKey(k: u64): u32 {
  return cellBucket(keyZone(k), keyX(k) >> CELL_SHIFT, keyY(k) >> CELL_SHIFT, 0, bits);
}

function setSpot(which: i32, j: i32, p: usize): void {
  const at = spot(which, j);
  store<u32>(at, Entity.zone(p), 0);
  store<u16>(at, Entity.x(p), 4);
  store<u16>(at, Entity.y(p), 6);
}

@inline function markKey(i: i32): u64 { return load<u64>(spots.ptr + (<usize>i << 3)); }

function mark(zone: u32, x: i32, y: i32): void {
  store<u64>(spots.append(8), spotKey(zone, x, y));
  marks++;
}

/**
 * Summarises the tick's journal and finds its marks (after the last rule);
 * markedCells then holds every coarse cell within `reach` cells of a mark.
 */
export function buildMarks(reach: i32): void {
  const count = journalLength();
  summaries.clear();
  summaries.append(<usize>count * SUMMARY);
  memory.fill(summaries.ptr, 0, <usize>count * SUMMARY);
  spots.clear();
  marks = 0;
  for (let j = 0; j < count; j++) {
    const flags = entryFlags(j);
    const now = rec(entrySlot(j));
    let b: u32 = Entity.kind(now) == Kind.player ? PLAYER_ENTRY : 0;
    if (!(flags & CREATED)) {
      const old = entryOld(j);
      setSpot(OLD, j, old);
      if (notOffline(old)) b |= SAW;
    }
    const hadRecord = !(flags & CREATED) || (flags & ARRIVED) != 0;
    const hasRecord = !(flags & REMOVED) || (flags & DEPARTED) != 0;
    if (hadRecord && hasRecord && !sameExceptSeq(entryOld(j), now)) b |= CHANGED;
    if (!(flags & REMOVED)) {
      setSpot(NOW, j, now);
      if (notOffline(now)) b |= SEES;
    }
    store<u64>(summary(j), Entity.id(now), 16);
    store<u32>(summary(j), b, 24);
    const saw = (b & SAW) != 0, sees = (b & SEES) != 0;
    if (saw != sees || (saw && !sameSpot(j))) {
      if (saw) mark(spotZone(OLD, j), spotX(OLD, j), spotY(OLD, j));
      if (sees) mark(spotZone(NOW, j), spotX(NOW, j), spotY(NOW, j));
    }
  }
  bucketMarks();
  hashMarks();
  findCells(reach);
}

/** The marks sorted into coarse-cell buckets (a counting sort). */
function bucketMarks(): void {
  const buckets = pow2AtLeast(<usize>marks << 1, 64);
  bits = <u64>ctz(buckets);
  const nStarts = buckets + 1;
  if (nStarts > startCap) {
    startCap = nStarts << 1;
    starts = alloc(startCap << 2);
  }
  memory.fill(starts, 0, nStarts << 2);
  for (let i = 0; i < marks; i++) {
    const at = startAt(<usize>bucketOfKey(markKey(i)) + 1);
    store<u32>(at, load<u32>(at) + 1);
  }
  for (let i: usize = 1; i < nStarts; i++) store<u32>(startAt(i), load<u32>(startAt(i)) + load<u32>(startAt(i - 1)));
  items.clear();
  items.append(<usize>marks << 3);
  for (let i = 0; i < marks; i++) {
    const key = markKey(i);
    const at = startAt(<usize>bucketOfKey(key));
    const k = load<u32>(at);
    store<u32>(at, k + 1);
    store<u64>(items.ptr + (<usize>k << 3), key);
  }
  // Placing advanced each start to the next bucket's: shift them back.
  for (let i = nStarts - 1; i > 0; i--) store<u32>(startAt(i), load<u32>(startAt(i - 1)));
  store<u32>(startAt(0), 0);
}

/** The marks as a set of exact positions. */
function hashMarks(): void {
  exact.reset(marks);
  for (let i = 0; i < marks; i++) exact.add(markKey(i));
}

/** Every coarse cell within `reach` cells of a mark, once: the marks' own cells, then around them. */
function findCells(reach: i32): void {
  own.clear();
  cellSet.reset(marks);
  for (let i = 0; i < marks; i++) {
    const key = markKey(i);
    const cell = cellKey(keyZone(key), keyX(key) >> CELL_SHIFT, keyY(key) >> CELL_SHIFT);
    if (cellSet.add(cell)) store<u64>(own.append(8), cell);
  }
  const owned = <i32>(own.len >> 3);
  markedCells.clear();
  cellSet.reset(owned * (2 * reach + 1) * (2 * reach + 1));
  for (let i = 0; i < owned; i++) {
    const cell = load<u64>(own.ptr + (<usize>i << 3));
    const zone = keyZone(cell), cx = keyX(cell), cy = keyY(cell);
    for (let dy = -reach; dy <= reach; dy++) {
      for (let dx = -reach; dx <= reach; dx++) {
        if (cx + dx < 0 || cy + dy < 0) continue;
        const near = cellKey(zone, cx + dx, cy + dy);
        if (cellSet.add(near)) store<u64>(markedCells.append(8), near);
      }
    }
  }
}

@inline function cellKey(zone: u32, cx: i32, cy: i32): u64 {
  return (<u64>zone << 32) | (<u64>cx << 16) | <u64>cy;
}

/** How many cells are near a mark (buildMarks). */
@inline export function markedCellCount(): i32 { return <i32>(markedCells.len >> 3); }

/** Zone, cell x and cell y of the i-th cell near a mark. */
@inline function markedCell(i: i32): u64 { return load<u64>(markedCells.ptr + (<usize>i << 3)); }
@inline export function markedCellZone(i: i32): u32 { return keyZone(markedCell(i)); }
@inline export function markedCellX(i: i32): i32 { return keyX(markedCell(i)); }
@inline export function markedCellY(i: i32): i32 { return keyY(markedCell(i)); }

/**
 * Whether a mark lies in `zone` within distance `r` of (x, y): by going
 * through the marks of the cells around, or by looking up each position of
 * the square, whichever is fewer.
 */
export function markNear(zone: u32, x: i32, y: i32, r: i32): bool {
  if (marks == 0) return false;
  const x0 = max(x - r, 0) >> CELL_SHIFT, x1 = (x + r) >> CELL_SHIFT;
  const y0 = max(y - r, 0) >> CELL_SHIFT, y1 = (y + r) >> CELL_SHIFT;
  let near: u32 = 0;
  for (let cy = y0; cy <= y1; cy++) {
    for (let cx = x0; cx <= x1; cx++) {
      const b = <usize>cellBucket(zone, cx, cy, 0, bits);
      near += load<u32>(startAt(b + 1)) - load<u32>(startAt(b));
    }
  }
  if (near == 0) return false;
  if (near <= <u32>((2 * r + 1) * (2 * r + 1))) {
    for (let cy = y0; cy <= y1; cy++) {
      for (let cx = x0; cx <= x1; cx++) {
        const b = <usize>cellBucket(zone, cx, cy, 0, bits);
        const end = items.ptr + (<usize>load<u32>(startAt(b + 1)) << 3);
        for (let item = items.ptr + (<usize>load<u32>(startAt(b)) << 3); item < end; item += 8) {
          const key = load<u64>(item);
          if (keyZone(key) == zone && abs(keyX(key) - x) <= r && abs(keyY(key) - y) <= r) return true;
        }
      }
    }
    return false;
  }
  for (let my = max(y - r, 0); my <= y + r; my++) {
    for (let mx = max(x - r, 0); mx <= x + r; mx++) {
      if (exact.has(spotKey(zone, mx, my))) return true;
    }
  }
  return false;
}
