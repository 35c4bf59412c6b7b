// Raw memory: a bump allocator and the growable buffers built on it.
//
// The module has no start function and allocates nothing before its first
// call: the host meters every call with fuel and instantiates with none
// (pipeline/engines/wasm/wasmtime_host.py), so module initialisation must not run
// code. That rules out `new` in a global initialiser, and with it the stub
// runtime's allocator, whose heap offset is set by a start function. Every
// buffer header lives in static memory (memory.data) instead, and blocks
// come from `alloc` below, which starts at __heap_base on first use.
//
//   [static data, buffer headers] [__heap_base: block][block]... [top) ... end of memory
//
// Nothing is ever freed (docs/abi.md): buffers are reused every tick and
// grow by doubling, so growth leaks at most what it doubles from, and a warm
// tick allocates nothing.

const ALIGN: usize = 16;
let top: usize = 0;

/** A block of `bytes` bytes, 16-aligned, contents undefined. */
export function alloc(bytes: usize): usize {
  if (top == 0) top = (__heap_base + ALIGN - 1) & ~(ALIGN - 1);
  const p = top;
  const end = (p + bytes + ALIGN - 1) & ~(ALIGN - 1);
  const pages = memory.size();
  const have = <usize>pages << 16;
  if (end > have) {
    const need = <i32>((end - have + 0xffff) >> 16);
    // Double the memory when that is enough, so growth stays rare.
    if (memory.grow(max(need, pages)) < 0) {
      if (memory.grow(need) < 0) unreachable(); // out of memory: a trap
    }
  }
  top = end;
  return p;
}

/**
 * A block of `newBytes` holding the first `oldBytes` of `ptr`'s block: the
 * same block extended when it is the last one, else a copy.
 */
export function grow(ptr: usize, oldBytes: usize, newBytes: usize): usize {
  if (ptr != 0 && ptr + ((oldBytes + ALIGN - 1) & ~(ALIGN - 1)) == top) {
    top = ptr;
    return alloc(newBytes);
  }
  const p = alloc(newBytes);
  if (ptr != 0) memory.copy(p, ptr, min(oldBytes, newBytes));
  return p;
}

/** The next power of two >= n (n >= 1), at least `floor`. */
/** Fibonacci hashing: the top `bits` bits of key * 2^64/phi, a table index. */
@inline export function fibonacciHash(key: u64, bits: u64): u32 {
  return <u32>((key * 0x9E3779B97F4A7C15) >> (64 - bits));
}

export function pow2AtLeast(n: usize, floor: usize): usize {
  let c = floor;
  while (c < n) c <<= 1;
  return c;
}

/** A per-slot i32 column grown from `oldCap` to `newCap` entries, new entries set to `fill`. */
export function growColumn(ptr: usize, oldCap: i32, newCap: i32, fill: i32): usize {
  const p = grow(ptr, <usize>oldCap << 2, <usize>newCap << 2);
  for (let i = oldCap; i < newCap; i++) store<i32>(p + (<usize>i << 2), fill);
  return p;
}

// The buffers below are @unmanaged headers placed in static memory, e.g.
//   const found = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
// zeroed memory being an empty buffer.

// An I32List, a growable list of slot numbers or indices:
//
//   header: +---------+---------+---------+
//           | ptr     | len i32 | cap i32 |
//           +---------+---------+---------+
//   ptr -> [i32][i32] ... [i32]   len used of cap
@unmanaged export class I32List {
  ptr: usize;
  len: i32;
  cap: i32;

  @inline get(i: i32): i32 { return load<i32>(this.ptr + (<usize>i << 2)); }
  @inline set(i: i32, v: i32): void { store<i32>(this.ptr + (<usize>i << 2), v); }
  @inline clear(): void { this.len = 0; }

  @inline push(v: i32): void {
    if (this.len == this.cap) this.reserve(this.len + 1);
    store<i32>(this.ptr + (<usize>this.len << 2), v);
    this.len++;
  }

  /** Appends `v` when `keep` is 1 (0: nothing), without a branch on `keep`. */
  @inline pushIf(v: i32, keep: i32): void {
    if (this.len == this.cap) this.reserve(this.len + 1);
    store<i32>(this.ptr + (<usize>this.len << 2), v);
    this.len += keep;
  }

  /** Room for at least n entries. */
  reserve(n: i32): void {
    if (n <= this.cap) return;
    const cap = <i32>pow2AtLeast(<usize>n, 64);
    this.ptr = grow(this.ptr, <usize>this.cap << 2, <usize>cap << 2);
    this.cap = cap;
  }

  /** Removes entry i by moving the last entry into it; returns the moved entry or -1. */
  swapRemove(i: i32): i32 {
    const last = this.len - 1;
    this.len = last;
    if (i == last) return -1;
    const moved = this.get(last);
    this.set(i, moved);
    return moved;
  }
}

// A KeyList, the one sortable shape (sort.ts sorts it by (a, b)):
//
//   ptr -> +--------+--------+--------+
//          | a: u64 | b: u64 | v: u64 |  x len, 24 bytes each
//          +--------+--------+--------+
//
// a and b are the sort key (ids: observer and entity, or 0 and an id), v is
// the payload (a slot, an index, an effect kind).
export const KEY_SIZE: usize = 24;

@unmanaged export class KeyList {
  ptr: usize;
  len: i32;
  cap: i32;

  @inline at(i: i32): usize { return this.ptr + <usize>i * KEY_SIZE; }
  @inline a(i: i32): u64 { return load<u64>(this.at(i), 0); }
  @inline b(i: i32): u64 { return load<u64>(this.at(i), 8); }
  @inline v(i: i32): u64 { return load<u64>(this.at(i), 16); }
  @inline clear(): void { this.len = 0; }

  @inline push(a: u64, b: u64, v: u64): void {
    if (this.len == this.cap) this.reserve(this.len + 1);
    const p = this.at(this.len);
    store<u64>(p, a, 0);
    store<u64>(p, b, 8);
    store<u64>(p, v, 16);
    this.len++;
  }

  reserve(n: i32): void {
    if (n <= this.cap) return;
    const cap = <i32>pow2AtLeast(<usize>n, 64);
    this.ptr = grow(this.ptr, <usize>this.cap * KEY_SIZE, <usize>cap * KEY_SIZE);
    this.cap = cap;
  }
}

// A ByteBuf, a growable byte buffer for records appended whole (effects,
// journal entries, frames out).
@unmanaged export class ByteBuf {
  ptr: usize;
  len: usize;
  cap: usize;

  @inline clear(): void { this.len = 0; }

  /** Address of `n` more bytes at the end (the buffer may move). */
  append(n: usize): usize {
    const end = this.len + n;
    if (end > this.cap) this.reserve(end);
    const p = this.ptr + this.len;
    this.len = end;
    return p;
  }

  reserve(n: usize): void {
    if (n <= this.cap) return;
    const cap = pow2AtLeast(n, 1024);
    this.ptr = grow(this.ptr, this.cap, cap);
    this.cap = cap;
  }
}

const EMPTY: u64 = 0xffffffffffffffff;

// A U64Map, u64 keys (not ~0) to i32 values, for one pass, reset to the size it needs (also a
// set of keys: add/has):
//
//   ptr -> [key u64, value i32, pad 4] x 2^bits, open addressing, linear probing
@unmanaged export class U64Map {
  ptr: usize;
  bits: u64;
  cap: usize;

  /** Empties the map, with room for `n` keys at most half full. */
  reset(n: i32): void {
    const size = pow2AtLeast(<usize>n << 1, 64);
    if (size > this.cap) {
      this.ptr = alloc(size << 4);
      this.cap = size;
    }
    this.bits = <u64>ctz(size);
    memory.fill(this.ptr, 0xff, size << 4);
  }

  /** The place of `key`, or the empty place where it would go. */
  @inline place(key: u64): usize {
    const m = (<u32>1 << <u32>this.bits) - 1;
    let h = fibonacciHash(key, this.bits);
    while (true) {
      const at = this.ptr + (<usize>h << 4);
      const k = load<u64>(at);
      if (k == key || k == EMPTY) return at;
      h = (h + 1) & m;
    }
    return 0;
  }

  /** The value of `key`, or -1. */
  @inline get(key: u64): i32 {
    const at = this.place(key);
    return load<u64>(at) == key ? load<i32>(at, 8) : -1;
  }

  @inline set(key: u64, value: i32): void {
    const at = this.place(key);
    store<u64>(at, key);
    store<i32>(at, value, 8);
  }

  @inline has(key: u64): bool { return load<u64>(this.place(key)) == key; }

  /** As a set: adds `key` (value 0); whether it was new. */
  @inline add(key: u64): bool {
    const at = this.place(key);
    if (load<u64>(at) == key) return false;
    store<u64>(at, key);
    store<i32>(at, 0, 8);
    return true;
  }
}
