// Spots: the visible entities at each exact position, in ascending id.
//
// In a crowd the nearest entities are found ring by ring of positions
// (rules/aoi.ts), and a position with a thousand entities on it must give
// its lowest ids without being read whole: so each position's entities form
// a list sorted by id, and a search takes only as many as it still needs.
//
//   table  -> +---------------------------+---------------+-------+
//             | key u64 (zone, x, y)      | head slot i32 | pad 4 |  x 2^bits, open addressing,
//             +---------------------------+---------------+-------+  linear probing; head -1: empty
//   nexts, prevs -> [i32] per slot: the slot's neighbours in its position's list
//   keys         -> [u64] per slot: where the slot is listed, or NOWHERE
//
// The table stays at most half full (it doubles with the slot capacity), and
// a deletion shifts the entries after it back, so there are no tombstones.

import { alloc, fibonacciHash, grow, growColumn } from "./mem";

const ENTRY: usize = 16;
const NOWHERE: u64 = 0xffffffffffffffff;   // no zone id 2^32-1 has a position 65535,65535

let table: usize = 0;
let bits: u64 = 0;
let nexts: usize = 0;
let prevs: usize = 0;
let keys: usize = 0;
let ids: usize = 0;
let slotCap: i32 = 0;

@inline export function spotKey(zone: u32, x: i32, y: i32): u64 {
  return (<u64>zone << 32) | (<u64>x << 16) | <u64>y;
}

@inline function entry(i: u32): usize { return table + (<usize>i << 4); }
@inline function entryKey(i: u32): u64 { return load<u64>(entry(i)); }
@inline function entryHead(i: u32): i32 { return load<i32>(entry(i), 8); }
@inline function setEntry(i: u32, key: u64, head: i32): void {
  store<u64>(entry(i), key);
  store<i32>(entry(i), head, 8);
}
@inline function mask(): u32 { return <u32>((<u64>1 << bits) - 1); }

@inline export function spotNext(s: i32): i32 { return load<i32>(nexts + (<usize>s << 2)); }
@inline function setNext(s: i32, v: i32): void { store<i32>(nexts + (<usize>s << 2), v); }
@inline function prevOf(s: i32): i32 { return load<i32>(prevs + (<usize>s << 2)); }
@inline function setPrev(s: i32, v: i32): void { store<i32>(prevs + (<usize>s << 2), v); }
@inline function keyOf(s: i32): u64 { return load<u64>(keys + (<usize>s << 3)); }
@inline function setKey(s: i32, k: u64): void { store<u64>(keys + (<usize>s << 3), k); }
@inline function idOf(s: i32): u64 { return load<u64>(ids + (<usize>s << 3)); }
/** The id of the entity listed in slot `s`. */
@inline export function spotId(s: i32): u64 { return idOf(s); }

/** The table index holding `key`, or the empty index where it would go. */
function find(key: u64): u32 {
  const m = mask();
  let i = fibonacciHash(key, bits);
  while (entryHead(i) >= 0 && entryKey(i) != key) i = (i + 1) & m;
  return i;
}

/** Whether slot `s` is listed at its position with no other. */
@inline export function standsAlone(s: i32): bool { return (prevOf(s) & spotNext(s)) < 0; }

/** The first (lowest-id) slot at (zone, x, y), or -1. */
export function spotHead(zone: u32, x: i32, y: i32): i32 {
  return entryHead(find(spotKey(zone, x, y)));
}

/** Deletes entry i, moving back the entries of its probe run that may not stay after a hole. */
function deleteEntry(i: u32): void {
  const m = mask();
  let hole = i;
  let j = (i + 1) & m;
  while (entryHead(j) >= 0) {
    const home = fibonacciHash(entryKey(j), bits);
    // Entry j may fill the hole unless its home lies cyclically in (hole, j].
    if (((j - home) & m) >= ((j - hole) & m)) {
      setEntry(hole, entryKey(j), entryHead(j));
      hole = j;
    }
    j = (j + 1) & m;
  }
  setEntry(hole, 0, -1);
}

/** Lists slot `s` (entity `id`) at `key`, among its position's ids in ascending order. */
export function spotPlace(s: i32, key: u64, id: u64): void {
  if (keyOf(s) == key) return;
  spotRemove(s);
  store<u64>(ids + (<usize>s << 3), id);
  setKey(s, key);
  const i = find(key);
  let head = entryHead(i);
  if (head < 0 || id < idOf(head)) {
    setPrev(s, -1);
    setNext(s, head);
    if (head >= 0) setPrev(head, s);
    setEntry(i, key, s);
    return;
  }
  let at = head;
  while (spotNext(at) >= 0 && idOf(spotNext(at)) < id) at = spotNext(at);
  const after = spotNext(at);
  setPrev(s, at);
  setNext(s, after);
  setNext(at, s);
  if (after >= 0) setPrev(after, s);
}

/** Takes slot `s` off its position's list, if it is on one. */
export function spotRemove(s: i32): void {
  const key = keyOf(s);
  if (key == NOWHERE) return;
  setKey(s, NOWHERE);
  const p = prevOf(s), n = spotNext(s);
  if (n >= 0) setPrev(n, p);
  if (p >= 0) {
    setNext(p, n);
  } else {
    const i = find(key);
    if (n >= 0) setEntry(i, key, n); else deleteEntry(i);
  }
}

/** A freshly taken slot is on no list. */
@inline export function spotForget(s: i32): void {
  setKey(s, NOWHERE);
}

/** Empties the table (every slot's key is reset when the slot is taken). */
export function clearSpots(): void {
  if (table == 0) return;
  const n = <u32>1 << <u32>bits;
  for (let i: u32 = 0; i < n; i++) setEntry(i, 0, -1);
}

/** The per-slot columns grow to `newCap`, and the table to twice that, rehashed. */
export function growSpots(newCap: i32): void {
  nexts = growColumn(nexts, slotCap, newCap, -1);
  prevs = growColumn(prevs, slotCap, newCap, -1);
  keys = grow(keys, <usize>slotCap << 3, <usize>newCap << 3);
  for (let s = slotCap; s < newCap; s++) setKey(s, NOWHERE);
  ids = grow(ids, <usize>slotCap << 3, <usize>newCap << 3);
  slotCap = newCap;
  let newBits = bits < 11 ? <u64>11 : bits;
  while ((<i32>1 << <i32>newBits) < 2 * newCap) newBits++;
  if (newBits == bits) return;
  const oldTable = table, oldSize: u32 = table == 0 ? 0 : <u32>1 << <u32>bits;
  bits = newBits;
  table = alloc(<usize>1 << <usize>(bits + 4));
  clearSpots();
  for (let i: u32 = 0; i < oldSize; i++) {
    const at = oldTable + (<usize>i << 4);
    const head = load<i32>(at, 8);
    if (head >= 0) {
      const key = load<u64>(at);
      setEntry(find(key), key, head);
    }
  }
}
