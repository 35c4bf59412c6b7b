// The tick's journal as the area of interest needs it: each entry's old and
// current position and visibility in a compact summary, and the entries
// sorted into cell buckets twice (by where the entity was at the start of
// the tick and by where it is now), so a moving observer finds the
// journaled entities it saw or sees without reading records. Built once a
// tick, after the last rule, so buckets are packed arrays, not chains.
//
//   summaries -> +------------------------------+------------------------------+
//                | OLD: zone u32, x u16, y u16  | NOW: zone u32, x u16, y u16  |
//                +------------------------------+---------------+--------------+
//                | id u64                       | bits u32      | stamp u32    |
//                +------------------------------+---------------+--------------+
//                32 bytes per journal entry
//   starts -> [u32] x (2 * 2^bits + 1): where each bucket's items begin, the
//             OLD buckets, then the NOW buckets, then the end
//   items  -> +----------+-------+-------+-----------+
//             | zone u32 | x u16 | y u16 | entry i32 | pad |  16 bytes, by bucket
//             +----------+-------+-------+-----------+
//
// bits: SAW      it existed at the start and was not an offline player then,
//       SEES     it exists now and is not an offline player,
//       CHANGED  it existed at both ends and its record changed in a field
//                other than last_seq (an `update` where it is seen both times),
//       PLAYER_ENTRY  it is a player,
//       WATCHED  it was an online player at the start: an observer then, with a view.
// stamp: the last observer pass that looked at the entry (dedupes).

import { Entity, Kind } from "./_generated/schema";
import {
  CREATED, entryFlags, entryOld, entrySlot, journalLength, REMOVED, sameExceptSeq,
} from "./journal";
import { alloc, ByteBuf, I32List, pow2AtLeast } from "./mem";
import { cellBucket } from "./spatial";
import { rec } from "./world";

export const OLD: i32 = 0;
export const NOW: i32 = 1;
export const SAW: u32 = 1;
export const SEES: u32 = 2;
export const CHANGED: u32 = 4;
export const PLAYER_ENTRY: u32 = 8;
export const WATCHED: u32 = 16;

const SUMMARY: usize = 32;
const CELL_SHIFT: i32 = 4;
const summaries = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
const items = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
let starts: usize = 0;
let startCap: usize = 0;
let bits: u64 = 0;
let count: i32 = 0;

@inline function summary(j: i32): usize { return summaries.ptr + <usize>j * SUMMARY; }
@inline function spot(which: i32, j: i32): usize { return summary(j) + (<usize>which << 3); }
@inline export function spotZone(which: i32, j: i32): u32 { return load<u32>(spot(which, j)); }
@inline export function spotX(which: i32, j: i32): i32 { return <i32>load<u16>(spot(which, j), 4); }
@inline export function spotY(which: i32, j: i32): i32 { return <i32>load<u16>(spot(which, j), 6); }
@inline export function summaryId(j: i32): u64 { return load<u64>(summary(j), 16); }
@inline export function summaryBits(j: i32): u32 { return load<u32>(summary(j), 24); }
@inline export function stamp(j: i32): u32 { return load<u32>(summary(j), 28); }
@inline export function setStamp(j: i32, e: u32): void { store<u32>(summary(j), e, 28); }

@inline function notOffline(p: usize): bool {
  return Entity.kind(p) != Kind.player || Entity.online(p) != 0;
}

@inline function startAt(i: usize): usize { return starts + (i << 2); }

/** The bucket, OLD half or NOW half, of entry j's `which` position. */
@inline function bucketOf(which: i32, j: i32): usize {
  const b = cellBucket(spotZone(which, j), spotX(which, j) >> CELL_SHIFT, spotY(which, j) >> CELL_SHIFT, 0, bits);
  return (<usize>which << <usize>bits) + <usize>b;
}

function setSpot(which: i32, j: i32, p: usize): void {
  const at = spot(which, j);
  store<u32>(at, Entity.zone(p), 0);
  store<u16>(at, Entity.x(p), 4);
  store<u16>(at, Entity.y(p), 6);
}

/** Summarises the tick's journal and sorts it into buckets (after the last rule). */
export function buildJournalGrid(): void {
  count = journalLength();
  const buckets = pow2AtLeast(<usize>count << 1, 64);
  bits = <u64>ctz(buckets);
  const nStarts = (buckets << 1) + 1;
  if (nStarts > startCap) {
    startCap = nStarts << 1;
    starts = alloc(startCap << 2);
  }
  memory.fill(starts, 0, nStarts << 2);
  summaries.clear();
  summaries.append(<usize>count * SUMMARY);
  memory.fill(summaries.ptr, 0, <usize>count * SUMMARY);
  let placed: u32 = 0;
  for (let j = 0; j < count; j++) {
    const flags = entryFlags(j);
    const now = rec(entrySlot(j));
    let b: u32 = Entity.kind(now) == Kind.player ? PLAYER_ENTRY : 0;
    if (!(flags & CREATED)) {
      const old = entryOld(j);
      setSpot(OLD, j, old);
      if (notOffline(old)) b |= SAW;
      if (Entity.kind(old) == Kind.player && Entity.online(old) != 0) b |= WATCHED;
      if (!(flags & REMOVED) && !sameExceptSeq(old, now)) b |= CHANGED;
      const at = startAt(bucketOf(OLD, j) + 1);
      store<u32>(at, load<u32>(at) + 1);
      placed++;
    }
    if (!(flags & REMOVED)) {
      setSpot(NOW, j, now);
      if (notOffline(now)) b |= SEES;
      const at = startAt(bucketOf(NOW, j) + 1);
      store<u32>(at, load<u32>(at) + 1);
      placed++;
    }
    store<u64>(summary(j), Entity.id(now), 16);
    store<u32>(summary(j), b, 24);
  }
  // Counts to starts; then each item goes to its bucket's next free place.
  for (let i: usize = 1; i < nStarts; i++) store<u32>(startAt(i), load<u32>(startAt(i)) + load<u32>(startAt(i - 1)));
  items.clear();
  items.append(<usize>placed << 4);
  for (let j = 0; j < count; j++) {
    const flags = entryFlags(j);
    if (!(flags & CREATED)) place(OLD, j);
    if (!(flags & REMOVED)) place(NOW, j);
  }
  // place() advanced each start to the next bucket's: shift them back.
  for (let i = nStarts - 1; i > 0; i--) store<u32>(startAt(i), load<u32>(startAt(i - 1)));
  store<u32>(startAt(0), 0);
}

function place(which: i32, j: i32): void {
  const at = startAt(bucketOf(which, j));
  const i = load<u32>(at);
  store<u32>(at, i + 1);
  const item = items.ptr + (<usize>i << 4);
  store<u64>(item, load<u64>(spot(which, j)));
  store<i32>(item, j, 8);
}

/** Whether entry j's `which` position is in `zone` within distance `r` of (x, y). */
@inline export function spotNear(which: i32, j: i32, zone: u32, x: i32, y: i32, r: i32): bool {
  return spotZone(which, j) == zone && abs(spotX(which, j) - x) <= r && abs(spotY(which, j) - y) <= r;
}

/** Appends every entry whose `which` position is in `zone` within distance `r` of (x, y). */
export function queryJournal(which: i32, zone: u32, x: i32, y: i32, r: i32, out: I32List): void {
  const x0 = max(x - r, 0) >> CELL_SHIFT, x1 = (x + r) >> CELL_SHIFT;
  const y0 = max(y - r, 0) >> CELL_SHIFT, y1 = (y + r) >> CELL_SHIFT;
  const half = <usize>which << <usize>bits;
  for (let cy = y0; cy <= y1; cy++) {
    for (let cx = x0; cx <= x1; cx++) {
      const b = half + <usize>cellBucket(zone, cx, cy, 0, bits);
      const end = items.ptr + (<usize>load<u32>(startAt(b + 1)) << 4);
      for (let item = items.ptr + (<usize>load<u32>(startAt(b)) << 4); item < end; item += 16) {
        const ex = <i32>load<u16>(item, 4), ey = <i32>load<u16>(item, 6);
        if (load<u32>(item) == zone && ex >> CELL_SHIFT == cx && ey >> CELL_SHIFT == cy
          && abs(ex - x) <= r && abs(ey - y) <= r) out.push(load<i32>(item, 8));
      }
    }
  }
}
