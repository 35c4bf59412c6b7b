// In-place sort of a KeyList by (a, b) ascending, unsigned.
//
// Ids are u64 but small in practice, so an LSD radix sort that skips every
// byte position whose digit is the same for all keys does a handful of
// linear passes; AOI effects can be tens of thousands per tick. Short lists
// (chat recipients, one tick's respawns) take an insertion sort instead.
//
// Digit d (0..15) is key byte d counted from the least significant end of
// (a, b): d < 8 is byte d of b (element offset 8 + d), d >= 8 byte d - 8 of a.
//
//   hist -> [ 256 x u32 counts of the digit being sorted on ]

import { KEY_SIZE, KeyList, ByteBuf, alloc } from "./mem";

const SMALL: i32 = 48;
const DIGITS: i32 = 16;
const HIST_BYTES: usize = 256 * 4;

let hist: usize = 0;
const spare = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));

@inline function digitOffset(d: i32): usize {
  return d < 8 ? <usize>(8 + d) : <usize>(d - 8);
}

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

export function sortKeys(list: KeyList): void {
  const n = list.len;
  if (n < 2) return;
  spare.reserve(<usize>n * KEY_SIZE);
  if (n <= SMALL) {
    insertionSort(list.ptr, n);
    return;
  }
  if (hist == 0) hist = alloc(HIST_BYTES);

  // Which key bytes differ at all: a digit every key shares orders nothing.
  const end = list.ptr + <usize>n * KEY_SIZE;
  let andA = load<u64>(list.ptr, 0), orA = andA, andB = load<u64>(list.ptr, 8), orB = andB;
  for (let p = list.ptr; p < end; p += KEY_SIZE) {
    const a = load<u64>(p, 0), b = load<u64>(p, 8);
    andA &= a; orA |= a; andB &= b; orB |= b;
  }
  const varyA = andA ^ orA, varyB = andB ^ orB;

  // One counting pass and one stable scatter per varying digit.
  let src = list.ptr;
  let dst = spare.ptr;
  for (let d = 0; d < DIGITS; d++) {
    const vary = d < 8 ? varyB >> (<u64>d << 3) : varyA >> (<u64>(d - 8) << 3);
    if (!(vary & 0xff)) continue;
    const off = digitOffset(d);
    const srcEnd = src + <usize>n * KEY_SIZE;
    memory.fill(hist, 0, 256 << 2);
    for (let p = src; p < srcEnd; p += KEY_SIZE) {
      const at = hist + (<usize>load<u8>(p + off) << 2);
      store<u32>(at, load<u32>(at) + 1);
    }
    let sum: u32 = 0;
    for (let b: usize = 0; b < 256; b++) {
      const at = hist + (b << 2);
      const c = load<u32>(at);
      store<u32>(at, sum);
      sum += c;
    }
    for (let p = src; p < srcEnd; p += KEY_SIZE) {
      const at = hist + (<usize>load<u8>(p + off) << 2);
      const pos = load<u32>(at);
      store<u32>(at, pos + 1);
      copyKey(dst + <usize>pos * KEY_SIZE, p);
    }
    const t = src; src = dst; dst = t;
  }
  if (src != list.ptr) memory.copy(list.ptr, src, <usize>n * KEY_SIZE);
}
