// What is in flight between zones (docs/rules.md "Zones"): credits, refunds
// and travellers, each a Transit struct (schema/world.fbs). Whatever a tick
// sends is due at the start of the next one, so there is one list, kept in
// its canonical order: travellers first, ascending id (binary searched),
// then credits and refunds in the order they were made.
//
//   items -> [Transit 160 bytes] x count; items [0, travellers) are travellers
//   due   -> the list the last tick left, taken whole by the arrivals
//
// A traveller's record lives here, in its Transit struct, from its travel to
// its arrival: it is in no slot meanwhile.

import { Entity, Transit, TransitKind } from "./_generated/schema";
import { ByteBuf } from "./mem";

let items = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
let due = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
let travellers: i32 = 0;

@inline function itemAt(list: ByteBuf, i: i32): usize { return list.ptr + <usize>i * Transit.SIZE; }
@inline export function transitItems(): usize { return items.ptr; }
@inline export function transitBytes(): usize { return items.len; }

/** Replaces the list with `n` packed Transit structs, travellers first (a world loaded anew, or arrivals). */
export function loadTransit(src: usize, n: i32): void {
  assert(Transit.RECORD_LENGTH == Entity.SIZE, "Transit.record is not an Entity record");
  items.clear();
  memory.copy(items.append(<usize>n * Transit.SIZE), src, <usize>n * Transit.SIZE);
  travellers = 0;
  for (let i = 0; i < n; i++) {
    if (Transit.kind(itemAt(items, i)) != TransitKind.traveller) continue;
    assert(i == travellers, "transit: a traveller after a credit or refund");
    assert(i == 0 || Transit.to_id(itemAt(items, i - 1)) < Transit.to_id(itemAt(items, i)),
      "transit: travellers not in ascending id");
    travellers++;
  }
}

/** Where traveller `id` would stand among the travellers: the first with an id >= it. */
function travellerPlace(id: u64): i32 {
  let lo = 0, hi = travellers;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Transit.to_id(itemAt(items, mid)) < id) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** The record of traveller `id` in flight, or 0. */
export function inFlight(id: u64): usize {
  const at = travellerPlace(id);
  if (at == travellers) return 0;
  const t = itemAt(items, at);
  return Transit.to_id(t) == id ? t + Transit.RECORD_OFFSET : 0;
}

/** A traveller leaves: a copy of its record `p`, already at its destination, due at `arriveTick`. */
export function board(p: usize, arriveTick: u64): void {
  const id = Entity.id(p);
  const at = travellerPlace(id);
  const moved = items.len - <usize>at * Transit.SIZE;
  items.append(Transit.SIZE);
  const t = itemAt(items, at);
  memory.copy(t + Transit.SIZE, t, moved);
  memory.fill(t, 0, Transit.SIZE);
  Transit.set_kind(t, TransitKind.traveller);
  Transit.set_arrive_tick(t, arriveTick);
  Transit.set_to_id(t, id);
  memory.copy(t + Transit.RECORD_OFFSET, p, Entity.SIZE);
  travellers++;
}

/** Gold in flight: a credit or a refund, due at `arriveTick`. */
export function send(kind: u8, arriveTick: u64, from: u64, to: u64, amount: i64): void {
  const t = items.append(Transit.SIZE);
  memory.fill(t, 0, Transit.SIZE);
  Transit.set_kind(t, kind);
  Transit.set_arrive_tick(t, arriveTick);
  Transit.set_from_id(t, from);
  Transit.set_to_id(t, to);
  Transit.set_amount(t, amount);
}

/** Takes the whole list as due, leaving it empty for what this tick sends; how many items. */
export function takeDue(): i32 {
  const taken = items;
  items = due;
  due = taken;
  items.clear();
  travellers = 0;
  return <i32>(due.len / Transit.SIZE);
}

/** Item i of the list takeDue took. */
@inline export function dueAt(i: i32): usize { return itemAt(due, i); }
