// The nearest visible entities to a position, by (distance, id), within
// SIGHT: what an area of interest is made of (docs/rules.md).
//
// Two ways to find them, whichever costs less where the search stands:
// - walking the coarse cells around (spatial.ts), which costs every entity
//   in them: cheap where few stand;
// - rings of exact positions at distance 0, 1, 2... (spots.ts), each
//   position's entities listed in ascending id, so a ring's lowest ids come
//   from merging its positions' lists and no list is read further than the
//   ids still wanted: in a crowd this costs about the entities wanted and the
//   positions out to the farthest of them, however many stand there.
//
// The result is `nearestSlots` with `nearestDistances` beside it, in no
// particular order.

import { Zone } from "./_generated/schema";
import { I32List, KEY_SIZE, KeyList } from "./mem";
import { sortKeys } from "./sort";
import { CELL_SHIFT, population, queryVisible, VISIBLE } from "./spatial";
import { spotHead, spotId, spotNext } from "./spots";
import { findZone } from "./world";

export const SIGHT: i32 = 10;
const CELL: i32 = 1 << CELL_SHIFT;
// Rings win once the entities in the cells around, squared, pass this times the cells' count: walking
// costs each entity in them, rings about 3x as much per position, and 32 / density positions.
const RING_FACTOR: u64 = 96 * <u64>(CELL * CELL);
const RING_COST: i32 = 2;      // a position of a ring costs about two entities walked

export const nearestSlots = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
export const nearestDistances = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const candidates = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const ties = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const cursors = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
const byDistance = memory.data(<i32>(SIGHT + 2) << 2, 4);
// The id at the head of each cursor's list: a ring has at most 8 * SIGHT positions.
const heads = memory.data(<i32>(8 * SIGHT) << 3, 8);

/**
 * The `want` visible entities nearest to (x, y) in `zone` within SIGHT, but
 * `exclude` (a slot, or -1), into nearestSlots and nearestDistances; fewer
 * when fewer stand there. Returns the distance of the farthest found when
 * `want` were found, else SIGHT. `reach`, when known (0..SIGHT; -1 when
 * not), is about how far they will be found: the radius an area had a tick
 * ago says where its neighbours stand now.
 */
export function nearestTo(zone: u32, x: i32, y: i32, want: i32, exclude: i32, reach: i32): i32 {
  nearestSlots.clear();
  nearestDistances.clear();
  // Walking costs each entity in the cells around, out to the reach: most often they are found
  // there, else the walk goes on out to SIGHT. Rings cost about twice as much a position, out
  // to the reach, or where the cells' density would put it.
  const r = reach >= 0 ? reach : SIGHT;
  const walk = <u64>population(zone, x, y, r, VISIBLE);
  const rings = reach >= 0 ? <u64>RING_COST * <u64>((2 * reach + 3) * (2 * reach + 3)) * walk
    : RING_FACTOR * <u64>cellsAround(x, y);
  if (walk * walk > rings) return ringByRing(zone, x, y, want, exclude);
  const radius = walkCells(zone, x, y, r, <u32>walk, want, exclude);
  if (nearestSlots.len == want || r == SIGHT) return radius;
  nearestSlots.clear();
  nearestDistances.clear();
  return walkCells(zone, x, y, SIGHT, population(zone, x, y, SIGHT, VISIBLE), want, exclude);
}

/** How many coarse cells a search around (x, y) covers. */
@inline function cellsAround(x: i32, y: i32): u32 {
  const w = ((x + SIGHT) >> CELL_SHIFT) - (max(x - SIGHT, 0) >> CELL_SHIFT) + 1;
  const h = ((y + SIGHT) >> CELL_SHIFT) - (max(y - SIGHT, 0) >> CELL_SHIFT) + 1;
  return <u32>(w * h);
}

@inline function found(s: i32, d: i32): void {
  nearestSlots.push(s);
  nearestDistances.push(d);
}

/**
 * From the coarse cells: every visible entity within r, counted by
 * distance; those nearer than the cut distance are in, and at the cut, the
 * lowest ids.
 */
function walkCells(zone: u32, x: i32, y: i32, r: i32, walk: u32, want: i32, exclude: i32): i32 {
  queryVisible(exclude, zone, x, y, r, walk, candidates, byDistance);
  const n = candidates.len;
  nearestSlots.reserve(min(n, want));
  nearestDistances.reserve(min(n, want));
  if (n < want) {
    for (let k = 0; k < n; k++) {
      store<i32>(nearestSlots.ptr + (<usize>k << 2), <i32>candidates.v(k));
      store<i32>(nearestDistances.ptr + (<usize>k << 2), <i32>candidates.a(k));
    }
    nearestSlots.len = nearestDistances.len = n;
    return SIGHT;
  }
  let cut = 0, nearer = 0;
  while (nearer + load<i32>(byDistance + (<usize>cut << 2)) < want) {
    nearer += load<i32>(byDistance + (<usize>cut << 2));
    cut++;
  }
  // Those nearer than the cut, branch-free; at the cut, the lowest ids.
  ties.clear();
  ties.reserve(load<i32>(byDistance + (<usize>cut << 2)));
  let to = 0, tie = ties.ptr;
  for (let k = 0; k < n; k++) {
    const d = <i32>candidates.a(k);
    store<i32>(nearestSlots.ptr + (<usize>to << 2), <i32>candidates.v(k));
    store<i32>(nearestDistances.ptr + (<usize>to << 2), d);
    to += <i32>(d < cut);
    if (d == cut) {
      store<u64>(tie, 0, 0);
      store<u64>(tie, candidates.b(k), 8);
      store<u64>(tie, candidates.v(k), 16);
      tie += KEY_SIZE;
    }
  }
  ties.len = <i32>((tie - ties.ptr) / KEY_SIZE);
  sortKeys(ties);
  for (let k = 0; k < want - nearer; k++) {
    store<i32>(nearestSlots.ptr + (<usize>(to + k) << 2), <i32>ties.v(k));
    store<i32>(nearestDistances.ptr + (<usize>(to + k) << 2), cut);
  }
  nearestSlots.len = nearestDistances.len = want;
  return cut;
}

/** From rings of positions outward, merging each ring's id-ordered lists. */
function ringByRing(zone: u32, x: i32, y: i32, want: i32, exclude: i32): i32 {
  const z = findZone(zone);
  const width = <i32>Zone.width(z), height = <i32>Zone.height(z);
  for (let d = 0; d <= SIGHT; d++) {
    cursors.clear();
    if (d == 0) {
      enter(exclude, zone, x, y);
    } else {
      const left = max(x - d, 0), right = min(x + d, width - 1);
      for (let c = left; c <= right; c++) {
        if (y - d >= 0) enter(exclude, zone, c, y - d);
        if (y + d < height) enter(exclude, zone, c, y + d);
      }
      const top = max(y - d + 1, 0), bottom = min(y + d - 1, height - 1);
      for (let r = top; r <= bottom; r++) {
        if (x - d >= 0) enter(exclude, zone, x - d, r);
        if (x + d < width) enter(exclude, zone, x + d, r);
      }
    }
    // Merge the ring's lists: each step takes the lowest id at the head of a list.
    let open = cursors.len;
    while (open > 1 && nearestSlots.len < want) {
      let best = 0, bestId = load<u64>(heads);
      for (let i = 1; i < open; i++) {
        const id = load<u64>(heads + (<usize>i << 3));
        if (id < bestId) { best = i; bestId = id; }
      }
      found(cursors.get(best), d);
      const next = after(exclude, cursors.get(best));
      if (next >= 0) {
        cursors.set(best, next);
        store<u64>(heads + (<usize>best << 3), spotId(next));
      } else {
        open--;
        cursors.set(best, cursors.get(open));
        store<u64>(heads + (<usize>best << 3), load<u64>(heads + (<usize>open << 3)));
      }
    }
    // One list left: the rest of it in order.
    for (let s = open == 1 ? cursors.get(0) : -1; s >= 0 && nearestSlots.len < want; s = after(exclude, s)) found(s, d);
    if (nearestSlots.len == want) return d;
  }
  return SIGHT;
}

/** The first entity listed at (x, y), `exclude` aside, becomes a cursor of the merge. */
@inline function enter(exclude: i32, zone: u32, x: i32, y: i32): void {
  let s = spotHead(zone, x, y);
  if (s == exclude) s = spotNext(s);
  if (s < 0) return;
  store<u64>(heads + (<usize>cursors.len << 3), spotId(s));
  cursors.push(s);
}

/** The entity listed after `s` at its position, `exclude` aside, or -1. */
@inline function after(exclude: i32, s: i32): i32 {
  const next = spotNext(s);
  return next == exclude ? spotNext(next) : next;
}
