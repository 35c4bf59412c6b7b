// The spatial grid: who is near a point, in time proportional to the answer.
//
// Cells are 16 x 16 (CELL_SHIFT); a cell (zone, cx, cy) hashes to one of
// 2^bits buckets, and each bucket heads a doubly-linked chain of slots.
// Walking a chain must not touch the 120-byte records (at 100k entities
// those are cache misses), so each slot has a compact node holding what a
// query filters on:
//
//   heads -> [i32 first slot or -1] x 2^bits
//   nodes -> +----------+----------+-------+-------+---------+-------+--------+
//            | next i32 | zone u32 | x u16 | y u16 | tags u8 | pad 3 | id u64 |  24 bytes per slot
//            +----------+----------+-------+-------+---------+-------+--------+
//   prevs  -> [i32] per slot     buckets -> [i32 bucket, -1: not placed] per slot
//
// Each cell has one chain per category (online players, npcs, items,
// offline players): the hottest queries want only online players
// (observers, npc targets, chat listeners), only npcs, or only what can be
// seen, and skip the other chains entirely.
//
// Chains may mix cells (hash collisions), so a query keeps a slot only when
// its node lies in the cell being scanned (no slot is reported twice) and
// within the exact box. The bucket count follows the slot capacity, so
// chains stay about one cell's category long; each bucket counts its chain
// (counts -> [u32] per bucket), which bounds what a query would walk.
//
// Visible slots are also listed by exact position (spots.ts), for the
// nearest-first searches of crowds.

import { Entity, Kind } from "./_generated/schema";
import { I32List, KEY_SIZE, KeyList, alloc, fibonacciHash, grow, growColumn } from "./mem";
import { clearSpots, growSpots, spotForget, spotKey, spotPlace, spotRemove } from "./spots";
import { mark, rec, setMark } from "./world";

// Tags: a query keeps the slots having all the wanted tags.
export const PLAYER: u8 = 1;
export const NPC: u8 = 2;
export const ONLINE: u8 = 4;        // a player online
export const LIVING: u8 = 8;        // a player or npc with respawn_tick 0
export const VISIBLE: u8 = 16;      // anything but an offline player (docs/rules.md "visible")

export const CELL_SHIFT: i32 = 4;
const NODE: usize = 24;

let heads: usize = 0;
let counts: usize = 0;
let bits: u64 = 0;
let nodes: usize = 0;
let prevs: usize = 0;
let buckets: usize = 0;
let slotCap: i32 = 0;

@inline function node(s: i32): usize { return nodes + <usize>s * NODE; }
@inline function head(b: u32): i32 { return load<i32>(heads + (<usize>b << 2)); }
@inline function setHead(b: u32, s: i32): void { store<i32>(heads + (<usize>b << 2), s); }
@inline function count(b: u32): u32 { return load<u32>(counts + (<usize>b << 2)); }
@inline function addCount(b: u32, d: i32): void { store<u32>(counts + (<usize>b << 2), count(b) + <u32>d); }
@inline function nextOf(s: i32): i32 { return load<i32>(node(s), 0); }
@inline function setNext(s: i32, v: i32): void { store<i32>(node(s), v, 0); }
@inline function prevOf(s: i32): i32 { return load<i32>(prevs + (<usize>s << 2)); }
@inline function setPrev(s: i32, v: i32): void { store<i32>(prevs + (<usize>s << 2), v); }
@inline function bucketOf(s: i32): i32 { return load<i32>(buckets + (<usize>s << 2)); }
@inline function setBucket(s: i32, b: i32): void { store<i32>(buckets + (<usize>s << 2), b); }
@inline export function nodeZone(s: i32): u32 { return load<u32>(node(s), 4); }
@inline export function nodeX(s: i32): i32 { return <i32>load<u16>(node(s), 8); }
@inline export function nodeY(s: i32): i32 { return <i32>load<u16>(node(s), 10); }
@inline export function nodeTags(s: i32): u8 { return load<u8>(node(s), 12); }
@inline export function nodeId(s: i32): u64 { return load<u64>(node(s), 16); }

// Categories, each with its own chains.
const CAT_ONLINE: u32 = 0;   // online players
const CAT_NPC: u32 = 1;      // npcs
const CAT_ITEM: u32 = 2;     // items
const CAT_OFFLINE: u32 = 3;  // offline players: never visible, never a target
const CATS: u32 = 4;

/** The bucket of category `cat` in cell (zone, cx, cy); cx, cy < 2^14 fit 14 bits each. */
@inline export function cellBucket(zone: u32, cx: i32, cy: i32, cat: u32, bits: u64): u32 {
  const key = (<u64>zone << 32) | (<u64>cat << 28) | (<u64>cx << 14) | <u64>cy;
  return fibonacciHash(key, bits);
}

@inline function categoryOf(tags: u8): u32 {
  return tags & ONLINE ? CAT_ONLINE : tags & NPC ? CAT_NPC : tags & PLAYER ? CAT_OFFLINE : CAT_ITEM;
}

/** The categories that can hold a slot with all the `want` tags. */
@inline function categoriesFor(want: u8): u32 {
  if (want & ONLINE) return 1 << CAT_ONLINE;
  if (want & NPC) return 1 << CAT_NPC;
  if (want & VISIBLE) return (1 << CAT_ONLINE) | (1 << CAT_NPC) | (1 << CAT_ITEM);
  return (1 << CATS) - 1;
}

@inline function nodeBucket(s: i32): u32 {
  return cellBucket(nodeZone(s), nodeX(s) >> CELL_SHIFT, nodeY(s) >> CELL_SHIFT, categoryOf(nodeTags(s)), bits);
}

function tagsOf(p: usize): u8 {
  const kind = Entity.kind(p);
  if (kind == Kind.item) return VISIBLE;
  let t: u8 = kind == Kind.player ? PLAYER : NPC;
  if (Entity.respawn_tick(p) == 0) t |= LIVING;
  if (kind == Kind.npc || Entity.online(p) != 0) t |= VISIBLE;
  if (kind == Kind.player && Entity.online(p) != 0) t |= ONLINE;
  return t;
}

function link(s: i32, b: u32): void {
  const h = head(b);
  setPrev(s, -1);
  setNext(s, h);
  if (h >= 0) setPrev(h, s);
  setHead(b, s);
  setBucket(s, <i32>b);
  addCount(b, 1);
}

/** Takes `s` out of the grid (its chain and its spot), if it is in it. */
export function unplace(s: i32): void {
  spotRemove(s);
  unlink(s);
}

function unlink(s: i32): void {
  const b = bucketOf(s);
  if (b < 0) return;
  const p = prevOf(s), n = nextOf(s);
  if (p >= 0) setNext(p, n); else setHead(<u32>b, n);
  if (n >= 0) setPrev(n, p);
  setBucket(s, -1);
  addCount(<u32>b, -1);
}

/** Copies `s`'s position and tags from its record and chains it in its cell. */
export function place(s: i32): void {
  const p = rec(s);
  const n = node(s);
  store<u32>(n, Entity.zone(p), 4);
  store<u16>(n, Entity.x(p), 8);
  store<u16>(n, Entity.y(p), 10);
  const tags = tagsOf(p);
  store<u8>(n, tags, 12);
  store<u64>(n, Entity.id(p), 16);
  if (tags & VISIBLE) spotPlace(s, spotKey(Entity.zone(p), Entity.x(p), Entity.y(p)), Entity.id(p));
  else spotRemove(s);
  const b = nodeBucket(s);
  if (bucketOf(s) == <i32>b) return;
  unlink(s);
  link(s, b);
}

/** A freshly taken slot is in no chain. */
@inline export function forgetSlot(s: i32): void {
  setBucket(s, -1);
  spotForget(s);
}

/** Empties the grid (every slot's bucket is reset when the slot is taken). */
export function clearGrid(): void {
  if (heads != 0) {
    memory.fill(heads, 0xff, (<usize>1 << <usize>bits) << 2);
    memory.fill(counts, 0, (<usize>1 << <usize>bits) << 2);
  }
  clearSpots();
}

/**
 * The slot columns grow to `newCap`; the bucket table grows to match and
 * every placed slot among the first `used` is chained again.
 */
export function growGrid(newCap: i32, used: i32): void {
  nodes = grow(nodes, <usize>slotCap * NODE, <usize>newCap * NODE);
  prevs = growColumn(prevs, slotCap, newCap, -1);
  buckets = growColumn(buckets, slotCap, newCap, -1);
  growSpots(newCap);
  slotCap = newCap;
  let newBits = bits < 10 ? <u64>10 : bits;
  while ((<i32>1 << <i32>newBits) < newCap) newBits++;
  if (newBits == bits) return;
  bits = newBits;
  heads = alloc((<usize>1 << <usize>bits) << 2);
  counts = alloc((<usize>1 << <usize>bits) << 2);
  memory.fill(heads, 0xff, (<usize>1 << <usize>bits) << 2);
  memory.fill(counts, 0, (<usize>1 << <usize>bits) << 2);
  for (let s = 0; s < used; s++) {
    if (bucketOf(s) >= 0) link(s, nodeBucket(s));
  }
}

/**
 * At least how many slots a query for `want` around (x, y) within `r` would
 * walk (exactly that many, unless cells share buckets).
 */
export function population(zone: u32, x: i32, y: i32, r: i32, want: u8): u32 {
  const x0 = max(x - r, 0) >> CELL_SHIFT, x1 = max(x + r, 0) >> CELL_SHIFT;
  const y0 = max(y - r, 0) >> CELL_SHIFT, y1 = max(y + r, 0) >> CELL_SHIFT;
  const cats = categoriesFor(want);
  let total: u32 = 0;
  for (let cat: u32 = 0; cat < CATS; cat++) {
    if (!(cats & (1 << cat))) continue;
    for (let cy = y0; cy <= y1; cy++) {
      for (let cx = x0; cx <= x1; cx++) total += count(cellBucket(zone, cx, cy, cat, bits));
    }
  }
  return total;
}

/**
 * Appends to `out`, as (distance, id, slot), every visible slot but `self`
 * in `zone` within Chebyshev distance `r` of (x, y), of the `walk` slots
 * (population()) in the cells around. Returns how many there are at each
 * distance in `byDistance` (r + 1 i32 counts).
 */
export function queryVisible(self: i32, zone: u32, x: i32, y: i32, r: i32, walk: u32, out: KeyList,
                             byDistance: usize): void {
  const x0 = max(x - r, 0) >> CELL_SHIFT, x1 = (x + r) >> CELL_SHIFT;
  const y0 = max(y - r, 0) >> CELL_SHIFT, y1 = (y + r) >> CELL_SHIFT;
  memory.fill(byDistance, 0, <usize>(r + 1) << 2);
  out.clear();
  out.reserve(<i32>walk + 1);
  const base = nodes;
  let p = out.ptr;
  for (let cat: u32 = 0; cat < CATS; cat++) {
    if (cat == CAT_OFFLINE) continue;
    for (let cy = y0; cy <= y1; cy++) {
      for (let cx = x0; cx <= x1; cx++) {
        // Zone, x and y side by side in the node: one masked compare says the slot is in this cell.
        const cell = <u64>zone | (<u64>cx << (32 + CELL_SHIFT)) | (<u64>cy << (48 + CELL_SHIFT));
        let s = head(cellBucket(zone, cx, cy, cat, bits));
        // Branch-free: each node is written out, and kept (the pointer moves on) only when it counts.
        while (s >= 0) {
          const n = base + <usize>s * NODE;
          const place = load<u64>(n, 4);
          const d = max(abs((<i32>(place >> 32) & 0xffff) - x), abs(<i32>(place >> 48) - y));
          const keep = <i32>(d <= r) & <i32>((place & IN_CELL) == cell);
          store<u64>(p, <u64>d, 0);
          store<u64>(p, load<u64>(n, 16), 8);
          store<u64>(p, <u64>s, 16);
          p += <usize>keep * KEY_SIZE;
          const at = byDistance + (<usize>(d * keep) << 2);
          store<i32>(at, load<i32>(at) + keep);
          s = load<i32>(n, 0);
        }
      }
    }
  }
  out.len = <i32>((p - out.ptr) / KEY_SIZE);
  if (self >= 0) leaveOut(self, out, byDistance);
}

/** Takes `self` out of what queryVisible found, if it is there. */
function leaveOut(self: i32, out: KeyList, byDistance: usize): void {
  for (let k = 0; k < out.len; k++) {
    if (<i32>out.v(k) != self) continue;
    const at = byDistance + (<usize>out.a(k) << 2);
    store<i32>(at, load<i32>(at) - 1);
    out.len--;
    memory.copy(out.at(k), out.at(out.len), KEY_SIZE);
    return;
  }
}

// Of a node's (zone u32, x u16, y u16) read as one u64: the zone and the cell's bits.
const IN_CELL: u64 = 0xffffffff | (<u64>(0xffff >> CELL_SHIFT << CELL_SHIFT) << 32)
  | (<u64>(0xffff >> CELL_SHIFT << CELL_SHIFT) << 48);

/**
 * Appends to `out`, as (0, id, slot), every living npc in `zone` within
 * distance `r` of (x, y) whose mark is not `epoch`, and marks it so (world.ts).
 */
export function livingNpcsNear(zone: u32, x: i32, y: i32, r: i32, epoch: u32, out: KeyList): void {
  const x0 = max(x - r, 0) >> CELL_SHIFT, x1 = (x + r) >> CELL_SHIFT;
  const y0 = max(y - r, 0) >> CELL_SHIFT, y1 = (y + r) >> CELL_SHIFT;
  for (let cy = y0; cy <= y1; cy++) {
    for (let cx = x0; cx <= x1; cx++) {
      for (let s = head(cellBucket(zone, cx, cy, CAT_NPC, bits)); s >= 0; s = nextOf(s)) {
        const n = node(s);
        const ex = <i32>load<u16>(n, 8), ey = <i32>load<u16>(n, 10);
        if ((load<u8>(n, 12) & LIVING) != 0 && abs(ex - x) <= r && abs(ey - y) <= r && load<u32>(n, 4) == zone
          && ex >> CELL_SHIFT == cx && ey >> CELL_SHIFT == cy && mark(s) != epoch) {
          setMark(s, epoch);
          out.push(0, load<u64>(n, 16), <u64>s);
        }
      }
    }
  }
}

/** The distance of what nearestLiving() last found. */
export let nearestDistance: i32 = 0;

/**
 * The living online player nearest to (x, y) in `zone` within distance `r`
 * (ties: the lowest id), or -1; its distance is then `nearestDistance`.
 */
export function nearestLiving(zone: u32, x: i32, y: i32, r: i32): i32 {
  const x0 = max(x - r, 0) >> CELL_SHIFT, x1 = (x + r) >> CELL_SHIFT;
  const y0 = max(y - r, 0) >> CELL_SHIFT, y1 = (y + r) >> CELL_SHIFT;
  let best = -1, bestD = r + 1, bestId: u64 = 0;
  for (let cy = y0; cy <= y1; cy++) {
    for (let cx = x0; cx <= x1; cx++) {
      for (let s = head(cellBucket(zone, cx, cy, CAT_ONLINE, bits)); s >= 0; s = nextOf(s)) {
        const n = node(s);
        const ex = <i32>load<u16>(n, 8), ey = <i32>load<u16>(n, 10);
        const d = max(abs(ex - x), abs(ey - y));
        const id = load<u64>(n, 16);
        // A chain may hold another cell's slots: those are met in their own cell (or not at all).
        if ((load<u8>(n, 12) & LIVING) != 0 && load<u32>(n, 4) == zone && ex >> CELL_SHIFT == cx
          && ey >> CELL_SHIFT == cy && (d < bestD || (d == bestD && id < bestId))) {
          best = s; bestD = d; bestId = id;
        }
      }
    }
  }
  nearestDistance = bestD;
  return best;
}

/**
 * Appends to `out` every placed slot with all the `want` tags, in `zone`
 * within Chebyshev distance `r` of (x, y).
 */
export function query(zone: u32, x: i32, y: i32, r: i32, want: u8, out: I32List): void {
  queryBox(zone, x - r, y - r, x + r, y + r, want, out);
}

/**
 * Appends to `out` every placed slot with all the `want` tags, in `zone`
 * with left <= x <= right and top <= y <= bottom.
 */
export function queryBox(zone: u32, left: i32, top: i32, right: i32, bottom: i32, want: u8, out: I32List): void {
  const x0 = max(left, 0) >> CELL_SHIFT, x1 = max(right, 0) >> CELL_SHIFT;
  const y0 = max(top, 0) >> CELL_SHIFT, y1 = max(bottom, 0) >> CELL_SHIFT;
  const cats = categoriesFor(want);
  const w = <u32>(right - left), h = <u32>(bottom - top);
  for (let cat: u32 = 0; cat < CATS; cat++) {
    if (!(cats & (1 << cat))) continue;
    for (let cy = y0; cy <= y1; cy++) {
      for (let cx = x0; cx <= x1; cx++) {
        let s = head(cellBucket(zone, cx, cy, cat, bits));
        // Branch-free filter: the tests are unpredictable, the walk is not.
        while (s >= 0) {
          const n = node(s);
          const ex = <i32>load<u16>(n, 8), ey = <i32>load<u16>(n, 10);
          const keep = <i32>((load<u8>(n, 12) & want) == want) & <i32>(load<u32>(n, 4) == zone)
            & <i32>(ex >> CELL_SHIFT == cx) & <i32>(ey >> CELL_SHIFT == cy)
            & <i32>(<u32>(ex - left) <= w) & <i32>(<u32>(ey - top) <= h);
          out.pushIf(s, keep);
          s = load<i32>(n, 0);
        }
      }
    }
  }
}
