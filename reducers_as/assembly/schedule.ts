// The respawn schedule: a binary min-heap of (respawn_tick, id, slot), so the
// respawn phase costs what is due, not the world.
//
//   heap -> +-----------------+--------+-----------+
//           | respawn_tick u64| id u64 | slot u64  |  x len (a KeyList)
//           +-----------------+--------+-----------+
//
// Entries may go stale (an upsert rewrites a record, a slot is reused); the
// respawn phase checks each popped entry against the record, so the heap
// only has to be a superset of what is due.

import { KEY_SIZE, KeyList } from "./mem";

const heap = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));

@inline function keyOf(i: i32): u64 { return heap.a(i); }

function swap(i: i32, j: i32): void {
  const p = heap.at(i), q = heap.at(j);
  for (let o: usize = 0; o < KEY_SIZE; o += 8) {
    const t = load<u64>(p + o);
    store<u64>(p + o, load<u64>(q + o));
    store<u64>(q + o, t);
  }
}

export function clearSchedule(): void {
  heap.clear();
}

/** Schedules `slot` (holding `id`) to be looked at once `tick >= respawnTick`. */
export function schedule(respawnTick: u64, id: u64, slot: i32): void {
  heap.push(respawnTick, id, <u64>slot);
  let i = heap.len - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (keyOf(parent) <= keyOf(i)) break;
    swap(i, parent);
    i = parent;
  }
}

/** Pops every entry due at `tick` into `out` as (0, id, slot). */
export function popDue(tick: u64, out: KeyList): void {
  while (heap.len > 0 && keyOf(0) <= tick) {
    out.push(0, heap.b(0), heap.v(0));
    const last = heap.len - 1;
    if (last > 0) swap(0, last);
    heap.len = last;
    let i = 0;
    while (true) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < last && keyOf(l) < keyOf(m)) m = l;
      if (r < last && keyOf(r) < keyOf(m)) m = r;
      if (m == i) break;
      swap(i, m);
      i = m;
    }
  }
}
