// The world's slots in ascending id, for canonical() (docs/rules.md, "World hash").
//
// New ids come from a zone's next_id, so most new entities sort last and
// are appended to `order`. The rest (a drop in a zone of lower range, an
// arrival, a join with a chosen low id, an upsert out of order) wait in
// `pending`, and removals are not tracked at all: an entry whose slot no
// longer holds its id is stale. orderedSlots() drops the stale
// entries and merges the pending ones in, once per canonical() call.
//
//   order, pending -> KeyList of (0, id, slot)

import { KeyList } from "./mem";
import { sortKeys } from "./sort";
import { holds } from "./world";

let order: KeyList = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
let spare: KeyList = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const pending = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
let lastId: u64 = 0;

export function clearOrder(): void {
  order.clear();
  pending.clear();
  lastId = 0;
}

export function orderAdd(id: u64, slot: i32): void {
  if (id > lastId) {
    order.push(0, id, <u64>slot);
    lastId = id;
  } else {
    pending.push(0, id, <u64>slot);
  }
}

/** Whether entry i still names an entity (removed ones keep their record until their slot is freed). */
@inline function live(list: KeyList, i: i32): bool {
  return holds(<i32>list.v(i), list.b(i));
}

/** Every entity's slot, ascending id, as (0, id, slot). */
export function orderedSlots(): KeyList {
  sortKeys(pending);
  spare.clear();
  spare.reserve(order.len + pending.len);
  let i = 0, j = 0;
  let prev: u64 = 0;
  while (i < order.len || j < pending.len) {
    let list: KeyList;
    let k: i32;
    if (j >= pending.len || (i < order.len && order.b(i) <= pending.b(j))) {
      list = order; k = i++;
    } else {
      list = pending; k = j++;
    }
    // An id merged from both lists (re-inserted) is kept once.
    if (!live(list, k) || list.b(k) == prev) continue;
    prev = list.b(k);
    spare.push(0, prev, list.v(k));
  }
  pending.clear();
  const t = order; order = spare; spare = t;
  lastId = order.len > 0 ? order.b(order.len - 1) : 0;
  return order;
}
