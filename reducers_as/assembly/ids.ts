// The id -> slot index: open addressing, linear probing, backward-shift
// deletion (no tombstones, so a long run of joins and pickups never degrades
// it). Ids are > 0, so key 0 marks an empty bucket.
//
//   keys -> [u64 id] x cap      vals -> [i32 slot] x cap      cap = 2^bits
//
// Kept at most half full; grows by doubling.

import { alloc, fibonacciHash } from "./mem";


let keys: usize = 0;
let vals: usize = 0;
let bits: u64 = 0;
let mask: u32 = 0;
let count: i32 = 0;

@inline function keyAt(i: u32): u64 { return load<u64>(keys + (<usize>i << 3)); }
@inline function setKey(i: u32, id: u64): void { store<u64>(keys + (<usize>i << 3), id); }
@inline function valAt(i: u32): i32 { return load<i32>(vals + (<usize>i << 2)); }
@inline function setVal(i: u32, slot: i32): void { store<i32>(vals + (<usize>i << 2), slot); }

/** Fibonacci hashing: sequential ids spread over the whole table. */
@inline function home(id: u64): u32 { return fibonacciHash(id, bits); }

function allocate(newBits: u64): void {
  bits = newBits;
  const cap = <usize>1 << <usize>newBits;
  mask = <u32>(cap - 1);
  keys = alloc(cap << 3);
  vals = alloc(cap << 2);
  memory.fill(keys, 0, cap << 3);
}

/** Empties the index (keeps its capacity). */
export function clearIds(): void {
  if (keys == 0) allocate(10);
  memory.fill(keys, 0, (<usize>mask + 1) << 3);
  count = 0;
}

/** The slot holding `id`, or -1. */
export function slotOf(id: u64): i32 {
  if (keys == 0 || id == 0) return -1;
  let i = home(id);
  while (true) {
    const k = keyAt(i);
    if (k == id) return valAt(i);
    if (k == 0) return -1;
    i = (i + 1) & mask;
  }
  return -1;
}

/** Maps a new id (not present) to `slot`. */
export function insertId(id: u64, slot: i32): void {
  if (keys == 0) allocate(10);
  if (<u32>(count + 1) << 1 > mask + 1) rehash(bits + 1);
  let i = home(id);
  while (keyAt(i) != 0) i = (i + 1) & mask;
  setKey(i, id);
  setVal(i, slot);
  count++;
}

/** Forgets `id` (present). */
export function removeId(id: u64): void {
  let i = home(id);
  while (keyAt(i) != id) {
    assert(keyAt(i) != 0, "removeId: id not indexed");
    i = (i + 1) & mask;
  }
  // Shift back every later entry of the run that may sit at i.
  let j = (i + 1) & mask;
  while (true) {
    const k = keyAt(j);
    if (k == 0) break;
    const h = home(k);
    if (((j - h) & mask) >= ((j - i) & mask)) {
      setKey(i, k);
      setVal(i, valAt(j));
      i = j;
    }
    j = (j + 1) & mask;
  }
  setKey(i, 0);
  count--;
}

/** Room for `n` ids without rehashing. */
export function reserveIds(n: i32): void {
  if (keys == 0) allocate(10);
  let want = bits;
  while ((<u64>n << 1) > (<u64>1 << want)) want++;
  if (want > bits) rehash(want);
}

function rehash(newBits: u64): void {
  const oldKeys = keys, oldVals = vals, oldCap = mask + 1;
  allocate(newBits);
  for (let i: u32 = 0; i < oldCap; i++) {
    const k = load<u64>(oldKeys + (<usize>i << 3));
    if (k == 0) continue;
    let at = home(k);
    while (keyAt(at) != 0) at = (at + 1) & mask;
    setKey(at, k);
    setVal(at, load<i32>(oldVals + (<usize>i << 2)));
  }
}
