// The tick journal: every record the tick touches, copied on its first write.
//
// The journal is what makes a tick cost its changes rather than the world:
// TickResult.changed/removed and the area-of-interest effects are all
// computed from it at the end of the tick.
//
//   entries -> +-----------+-----------+---------------------------+
//              | slot: i32 | flags: u32| old record (120 bytes)    |  x len
//              +-----------+-----------+---------------------------+
//   jidx[slot] -> entry index, or -1 when the slot is untouched this tick
//
// A created entity has no old record (CREATED); a removed one keeps its slot
// and record until world.releaseRemoved() at the very end of the tick, so
// every journaled entity has exactly one slot while the tick is reported.
// Travellers: one that arrived (CREATED | ARRIVED) keeps its record in flight
// as its old record; one that departed (REMOVED | DEPARTED) keeps its record
// in flight in its slot, last_seq aside (the area of interest compares them).

import { Entity } from "./_generated/schema";
import { ByteBuf, growColumn, KeyList } from "./mem";
import { sortKeys } from "./sort";
import { rec } from "./world";

export const CREATED: u32 = 1;
export const REMOVED: u32 = 2;
export const ARRIVED: u32 = 4;
export const DEPARTED: u32 = 8;

const ENTRY_SIZE: usize = 8 + Entity.SIZE;
const entries = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
let count: i32 = 0;
let jidx: usize = 0;
let slotCap: i32 = 0;

@inline function entryAt(j: i32): usize { return entries.ptr + <usize>j * ENTRY_SIZE; }
@inline export function journalLength(): i32 { return count; }
@inline export function entrySlot(j: i32): i32 { return load<i32>(entryAt(j), 0); }
@inline export function entryFlags(j: i32): u32 { return load<u32>(entryAt(j), 4); }
/** The record as it was at the start of the tick (not for CREATED entries but ARRIVED ones). */
@inline export function entryOld(j: i32): usize { return entryAt(j) + 8; }
@inline export function journalIndex(slot: i32): i32 { return load<i32>(jidx + (<usize>slot << 2)); }
@inline function setIndex(slot: i32, j: i32): void { store<i32>(jidx + (<usize>slot << 2), j); }

export function growJournal(newCap: i32): void {
  jidx = growColumn(jidx, slotCap, newCap, -1);
  slotCap = newCap;
}

function newEntry(slot: i32, flags: u32): i32 {
  const p = entries.append(ENTRY_SIZE);
  store<i32>(p, slot, 0);
  store<u32>(p, flags, 4);
  setIndex(slot, count);
  return count++;
}

/** `slot`'s record, journaled first if this is the tick's first write to it. */
export function touch(slot: i32): usize {
  const p = rec(slot);
  if (journalIndex(slot) < 0) {
    const j = newEntry(slot, 0);
    memory.copy(entryOld(j), p, Entity.SIZE);
  }
  return p;
}

/** `slot` holds an entity created during this tick. */
export function noteCreated(slot: i32): void {
  newEntry(slot, CREATED);
}

/** `slot`'s entity is removed from the world this tick. */
export function noteRemoved(slot: i32): void {
  touch(slot);
  const p = entryAt(journalIndex(slot));
  store<u32>(p, load<u32>(p, 4) | REMOVED, 4);
}

/** `slot` holds a traveller that arrived this tick; `record` is its record in flight. */
export function noteArrived(slot: i32, record: usize): void {
  memory.copy(entryOld(newEntry(slot, CREATED | ARRIVED)), record, Entity.SIZE);
}

/** `slot`'s player leaves its zone this tick, for another. */
export function noteDeparted(slot: i32): void {
  noteRemoved(slot);
  const p = entryAt(journalIndex(slot));
  store<u32>(p, load<u32>(p, 4) | DEPARTED, 4);
}

/** `slot`'s entity, removed earlier this tick, is back (world.reclaim). */
export function noteReclaimed(slot: i32): void {
  const p = entryAt(journalIndex(slot));
  store<u32>(p, load<u32>(p, 4) & ~REMOVED, 4);
}

// ---- Comparing records ----------------------------------------------------
//
// An Entity record is 15 u64 words; word 5 (offset 40) is last_seq, which
// the area of interest ignores (docs/rules.md: "changed during the tick in
// any field but last_seq").

const SEQ_WORD: usize = 40;

/** Whether two records are byte-identical. */
export function sameRecord(a: usize, b: usize): bool {
  for (let o: usize = 0; o < Entity.SIZE; o += 8) {
    if (load<u64>(a + o) != load<u64>(b + o)) return false;
  }
  return true;
}

/** Whether two records agree in every byte but last_seq. */
export function sameExceptSeq(a: usize, b: usize): bool {
  for (let o: usize = 0; o < Entity.SIZE; o += 8) {
    if (o != SEQ_WORD && load<u64>(a + o) != load<u64>(b + o)) return false;
  }
  return true;
}

/**
 * TickResult.changed and .removed as (0, id, slot), ascending id: created
 * entities and those whose record differs in any byte; entities that existed
 * at the start and not at the end. Created-and-removed is in neither.
 */
export function collectChanges(changed: KeyList, removed: KeyList): void {
  changed.clear();
  removed.clear();
  for (let j = 0; j < count; j++) {
    const flags = entryFlags(j);
    const slot = entrySlot(j);
    const id = Entity.id(rec(slot));
    if (flags & CREATED) {
      if (!(flags & REMOVED)) changed.push(0, id, <u64>slot);
    } else if (flags & REMOVED) {
      removed.push(0, id, <u64>slot);
    } else if (!sameRecord(entryOld(j), rec(slot))) {
      changed.push(0, id, <u64>slot);
    }
  }
  sortKeys(changed);
  sortKeys(removed);
}

/** Forgets the tick: every touched slot is untouched again. */
export function endJournal(): void {
  for (let j = 0; j < count; j++) setIndex(entrySlot(j), -1);
  entries.clear();
  count = 0;
}
