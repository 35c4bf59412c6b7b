// Every online player's area of interest, kept from one tick to the next,
// and the reverse relation: who watches each entity.
//
// The area-of-interest pass (rules/aoi.ts) needs each observer's view at the
// start of the tick. Searching every observer's again each tick would cost
// every observer a search, moved or not, so the views are kept: an observer
// owns a block, its area's members (slots) and radius; each member entry is
// also an edge in that member's list of watchers, so a changed entity finds
// the observers to update without a search.
//
//   blocks -> +-----------+-----------+------------+-------+
//             | owner i32 | count i32 | radius i32 | pad 4 |
//             +-----------+-----------+------------+-------+
//             | member i32 | next i32 | prev i32 | x 32     edge b*32+k: member k of block b,
//             +------------+----------+----------+          linked among the member's watchers
//             400 bytes per block; free blocks are chained through `owner`
//   areas    -> [i32] per slot: the slot's block, or -1 (not an online player)
//   watchers -> [i32] per slot: the first edge watching the slot, or -1
//   searched -> [u32] per slot: the last pass that searched its area again

import { growColumn, grow } from "./mem";

export const MEMBERS: i32 = 32;
const BLOCK: usize = 16 + <usize>MEMBERS * 12;

let blocks: usize = 0;
let blockCap: i32 = 0;
let blockTop: i32 = 0;
let freeBlock: i32 = -1;
let areas: usize = 0;
let watchers: usize = 0;
let searched: usize = 0;
let slotCap: i32 = 0;
let pass: u32 = 0;

/** False once a tick skipped the pass: no areas are kept until they are searched again. */
export let interestValid: bool = true;

@inline function block(b: i32): usize { return blocks + <usize>b * BLOCK; }
@inline function edge(e: i32): usize { return block(e >> 5) + 16 + <usize>(e & 31) * 12; }
@inline function ownerOf(b: i32): i32 { return load<i32>(block(b)); }
@inline export function edgeMember(e: i32): i32 { return load<i32>(edge(e)); }
@inline export function edgeNext(e: i32): i32 { return load<i32>(edge(e), 4); }
@inline function setEdgeNext(e: i32, v: i32): void { store<i32>(edge(e), v, 4); }
@inline function edgePrev(e: i32): i32 { return load<i32>(edge(e), 8); }
@inline function setEdgePrev(e: i32, v: i32): void { store<i32>(edge(e), v, 8); }
/** The observer (slot) whose area edge `e` belongs to. */
@inline export function edgeObserver(e: i32): i32 { return ownerOf(e >> 5); }

@inline export function areaOf(slot: i32): i32 { return load<i32>(areas + (<usize>slot << 2)); }
@inline function setAreaOf(slot: i32, b: i32): void { store<i32>(areas + (<usize>slot << 2), b); }
@inline export function firstWatcher(slot: i32): i32 { return load<i32>(watchers + (<usize>slot << 2)); }
@inline function setFirstWatcher(slot: i32, e: i32): void { store<i32>(watchers + (<usize>slot << 2), e); }

/** Members of `slot`'s area (it must have one): count, and member k. */
@inline export function areaCount(slot: i32): i32 { return load<i32>(block(areaOf(slot)), 4); }
/** Where `slot`'s area's members are (memberAt reads them), valid until the area changes. */
@inline export function areaMembers(slot: i32): usize { return block(areaOf(slot)) + 16; }
@inline export function memberAt(members: usize, k: i32): i32 { return load<i32>(members + <usize>k * 12); }
@inline export function areaRadius(slot: i32): i32 { return load<i32>(block(areaOf(slot)), 8); }

/** A fresh pass number: no slot is marked searched in it yet. */
export function newPass(): u32 {
  if (++pass == 0) {
    memory.fill(searched, 0, <usize>slotCap << 2);
    pass = 1;
  }
  return pass;
}
@inline export function searchedIn(slot: i32): u32 { return load<u32>(searched + (<usize>slot << 2)); }
@inline export function markSearched(slot: i32, p: u32): void { store<u32>(searched + (<usize>slot << 2), p); }

export function growInterest(newCap: i32): void {
  areas = growColumn(areas, slotCap, newCap, -1);
  watchers = growColumn(watchers, slotCap, newCap, -1);
  searched = growColumn(searched, slotCap, newCap, 0);
  slotCap = newCap;
}

/** Forgets every area (a world loaded anew, or areas gone stale). */
export function clearInterest(valid: bool): void {
  if (slotCap > 0) {
    memory.fill(areas, 0xff, <usize>slotCap << 2);
    memory.fill(watchers, 0xff, <usize>slotCap << 2);
  }
  blockTop = 0;
  freeBlock = -1;
  interestValid = valid;
}

function takeBlock(): i32 {
  if (freeBlock >= 0) {
    const b = freeBlock;
    freeBlock = ownerOf(b);
    return b;
  }
  if (blockTop == blockCap) {
    const cap = blockCap == 0 ? 256 : blockCap << 1;
    blocks = grow(blocks, <usize>blockCap * BLOCK, <usize>cap * BLOCK);
    blockCap = cap;
  }
  return blockTop++;
}

@inline function link(e: i32, m: i32): void {
  const first = firstWatcher(m);
  store<i32>(edge(e), m, 0);
  setEdgeNext(e, first);
  setEdgePrev(e, -1);
  if (first >= 0) setEdgePrev(first, e);
  setFirstWatcher(m, e);
}

@inline function unlink(e: i32): void {
  const p = edgePrev(e), next = edgeNext(e);
  if (p >= 0) setEdgeNext(p, next); else setFirstWatcher(edgeMember(e), next);
  if (next >= 0) setEdgePrev(next, p);
}

/** An empty area for `observer` (which has none), with this radius. */
export function newArea(observer: i32, radius: i32): void {
  const b = takeBlock();
  setAreaOf(observer, b);
  const at = block(b);
  store<i32>(at, observer, 0);
  store<i32>(at, 0, 4);
  store<i32>(at, radius, 8);
}

@inline export function setRadius(observer: i32, radius: i32): void {
  store<i32>(block(areaOf(observer)), radius, 8);
}

/** Appends member `m` to `observer`'s area. */
export function addMember(observer: i32, m: i32): void {
  const b = areaOf(observer);
  const n = load<i32>(block(b), 4);
  link((b << 5) | n, m);
  store<i32>(block(b), n + 1, 4);
}

/** Member k of `observer`'s area becomes `m`. */
export function replaceMember(observer: i32, k: i32, m: i32): void {
  const e = (areaOf(observer) << 5) | k;
  unlink(e);
  link(e, m);
}

/** Removes member k of `observer`'s area; its last member takes place k. */
export function removeMember(observer: i32, k: i32): void {
  const b = areaOf(observer);
  const last = load<i32>(block(b), 4) - 1;
  const e = (b << 5) | k;
  unlink(e);
  if (k != last) {
    // The last edge moves to place k: whoever pointed at it points at k now.
    const from = (b << 5) | last;
    const m = edgeMember(from), p = edgePrev(from), next = edgeNext(from);
    store<i32>(edge(e), m, 0);
    setEdgePrev(e, p);
    setEdgeNext(e, next);
    if (p >= 0) setEdgeNext(p, e); else setFirstWatcher(m, e);
    if (next >= 0) setEdgePrev(next, e);
  }
  store<i32>(block(b), last, 4);
}

/** `observer`'s area becomes the `n` slots at `members` (i32s), with this radius. */
export function setArea(observer: i32, members: usize, n: i32, radius: i32): void {
  dropArea(observer);
  newArea(observer, radius);
  for (let k = 0; k < n; k++) addMember(observer, load<i32>(members + (<usize>k << 2)));
}

/** `observer`'s area is itself alone, with radius 0 (a traveller, in flight until now). */
export function soleArea(observer: i32): void {
  dropArea(observer);
  newArea(observer, 0);
  addMember(observer, observer);
}

/** `observer` keeps no area any more (it went offline). */
export function dropArea(observer: i32): void {
  const b = areaOf(observer);
  if (b < 0) return;
  const n = load<i32>(block(b), 4);
  for (let k = 0; k < n; k++) unlink((b << 5) | k);
  setAreaOf(observer, -1);
  store<i32>(block(b), freeBlock, 0);
  freeBlock = b;
}
