// In-place sort of a KeyList by (a, b) ascending, unsigned.
//
// An LSD radix sort: b first, then a, each stable. A key whose values span
// less than 2^16 (ids usually do) is sorted in one counting pass on its
// offset from the smallest; a wider one byte by byte, skipping every byte
// that is the same in all keys. AOI effects can be tens of thousands a
// tick, so that is two linear passes where bytes would take four. Short
// lists (chat recipients, one tick's respawns) take an insertion sort.
//
//   hist -> [ u32 counts ] x up to 2^16

import { KEY_SIZE, KeyList, ByteBuf, alloc } from "./mem";

const SMALL: i32 = 48;
const WIDE: u64 = 1 << 16;   // a key spanning fewer values is sorted in one pass

let hist: usize = 0;
let histCap: usize = 0;
const spare = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));

@inline function less(p: usize, q: usize): bool {
  const pa = load<u64>(p, 0), qa = load<u64>(q, 0);
  return pa < qa || (pa == qa && load<u64>(p, 8) < load<u64>(q, 8));
}

@inline function copyKey(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src, 0), 0);
  store<u64>(dst, load<u64>(src, 8), 8);
  store<u64>(dst, load<u64>(src, 16), 16);
}

function insertionSort(base: usize, n: i32): void {
  const hold = spare.ptr; // one element's room, reserved by the caller
  for (let i = 1; i < n; i++) {
    const p = base + <usize>i * KEY_SIZE;
    if (!less(p, p - KEY_SIZE)) continue;
    copyKey(hold, p);
    let j = i;
    while (j > 0 && less(hold, base + <usize>(j - 1) * KEY_SIZE)) {
      copyKey(base + <usize>j * KEY_SIZE, base + <usize>(j - 1) * KEY_SIZE);
      j--;
    }
    copyKey(base + <usize>j * KEY_SIZE, hold);
  }
}

/** Room for `buckets` counts, zeroed. */
function clearHist(buckets: usize): void {
  if (buckets > histCap) {
    histCap = buckets;
    hist = alloc(buckets << 2);
  }
  memory.fill(hist, 0, buckets << 2);
}

/**
 * One stable counting pass of the n keys at `src` into `dst`, on the digit
 * ((key at `field`) - low) >> shift & mask, of `buckets` values.
 */
function countingPass(src: usize, dst: usize, n: i32, field: usize, low: u64, shift: u64, mask: u64,
                      buckets: usize): void {
  clearHist(buckets);
  const end = src + <usize>n * KEY_SIZE;
  for (let p = src; p < end; p += KEY_SIZE) {
    const at = hist + (<usize>(((load<u64>(p + field) - low) >> shift) & mask) << 2);
    store<u32>(at, load<u32>(at) + 1);
  }
  let sum: u32 = 0;
  for (let b: usize = 0; b < buckets; b++) {
    const at = hist + (b << 2);
    const c = load<u32>(at);
    store<u32>(at, sum);
    sum += c;
  }
  for (let p = src; p < end; p += KEY_SIZE) {
    const at = hist + (<usize>(((load<u64>(p + field) - low) >> shift) & mask) << 2);
    const pos = load<u32>(at);
    store<u32>(at, pos + 1);
    copyKey(dst + <usize>pos * KEY_SIZE, p);
  }
}

// The two buffers the passes alternate between: the list's and the spare.
let from: usize = 0;
let into: usize = 0;

/** Sorts the n keys in `from` stably by the key at `field` (a pass or more), leaving them in `from`. */
function sortField(n: i32, field: usize, low: u64, high: u64, vary: u64): void {
  if (high - low < WIDE) {
    if (high == low) return;
    countingPass(from, into, n, field, low, 0, WIDE - 1, <usize>(high - low + 1));
    const t = from; from = into; into = t;
    return;
  }
  for (let shift: u64 = 0; shift < 64; shift += 8) {
    if (!((vary >> shift) & 0xff)) continue;
    countingPass(from, into, n, field, 0, shift, 0xff, 256);
    const t = from; from = into; into = t;
  }
}

export function sortKeys(list: KeyList): void {
  const n = list.len;
  if (n < 2) return;
  spare.reserve(<usize>n * KEY_SIZE);
  if (n <= SMALL) {
    insertionSort(list.ptr, n);
    return;
  }
  // Each key's smallest and largest value, and which of its bits differ at all.
  const end = list.ptr + <usize>n * KEY_SIZE;
  let lowA = load<u64>(list.ptr, 0), highA = lowA, andA = lowA, orA = lowA;
  let lowB = load<u64>(list.ptr, 8), highB = lowB, andB = lowB, orB = lowB;
  for (let p = list.ptr; p < end; p += KEY_SIZE) {
    const a = load<u64>(p, 0), b = load<u64>(p, 8);
    lowA = min(lowA, a); highA = max(highA, a); andA &= a; orA |= a;
    lowB = min(lowB, b); highB = max(highB, b); andB &= b; orB |= b;
  }
  from = list.ptr;
  into = spare.ptr;
  sortField(n, 8, lowB, highB, andB ^ orB);
  sortField(n, 0, lowA, highA, andA ^ orA);
  if (from != list.ptr) memory.copy(list.ptr, from, <usize>n * KEY_SIZE);
}
