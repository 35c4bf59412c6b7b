// What leaves the module: the tick's effects, its TickResult and the
// canonical world encoding.
//
// Effects are gathered during the tick as ready Effect structs (40 bytes,
// schema/world.fbs), except the area-of-interest ones, which are gathered as
// (observer, entity, kind) keys and sorted before they are written.
//
// TickResult, size-prefixed (the same layout pipeline/engines/frames.py writes):
//
//   [size u32] [root u32 = 32] [vtable: 22, 56, 8, 16, 24, 28, 32, 36, 40, 44, 48] [pad 6]
//   table @32: [soffset i32 = 28] [pad 4] [tick u64] [next_id u64] [effects u32] [recipients u32]
//              [changed u32] [removed u32] [previous u32] [zones u32] [transit u32] [pad 4]
//   then each vector: [pad] [count u32] [elements, 8-aligned]
//
// The buffer body starts 8-aligned and, per MEASURED.md, half a page away
// from the input area modulo 4096.

import { Effect, EffectKind, Entity, TickResult, Transit, Zone } from "./_generated/schema";
import { CREATED, entryFlags, entryOld, journalIndex } from "./journal";
import { ByteBuf, KeyList } from "./mem";
import { transitBytes, transitItems } from "./transit";
import { nextId, rec, seed, tick, zoneAt, zoneCount } from "./world";

const effects = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
const recipients = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
/** Area-of-interest effects as (observer, entity, kind), sorted by rules/aoi.ts. */
export const views = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const sights = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
const out = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
const canon = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
let inputAddress: usize = 0;

// The table follows the root offset and the vtable, 8-aligned.
const TABLE_POS: usize = (4 + 4 + 2 * <usize>TickResult.FIELDS + 7) & ~<usize>7;
const HEADER_END: usize = TABLE_POS + TickResult.INLINE_SIZE;

export function clearEffects(): void {
  effects.clear();
  recipients.clear();
  views.clear();
}

export function setInputAddress(p: usize): void {
  inputAddress = p;
}

function effect(kind: u8, subject: u64, object: u64): usize {
  const p = effects.append(Effect.SIZE);
  memory.fill(p, 0, Effect.SIZE);
  Effect.set_kind(p, kind);
  Effect.set_subject(p, subject);
  Effect.set_object(p, object);
  return p;
}

export function rejected(player: u64, seq: u64, reason: u8): void {
  Effect.set_reason(effect(EffectKind.rejected, player, seq), reason);
}

export function died(entity: u64, by: u64): void {
  effect(EffectKind.died, entity, by);
}

export function respawned(entity: u64): void {
  effect(EffectKind.respawned, entity, 0);
}

/** A chat effect whose recipients (already sorted) are `ids`. */
export function chat(from: u64, textOffset: u32, textLen: u32, ids: KeyList): void {
  const p = effect(EffectKind.chat, from, 0);
  Effect.set_text_offset(p, textOffset);
  Effect.set_text_len(p, textLen);
  Effect.set_list_offset(p, <u32>(recipients.len >> 3));
  Effect.set_list_count(p, <u32>ids.len);
  const dst = recipients.append(<usize>ids.len << 3);
  for (let i = 0; i < ids.len; i++) store<u64>(dst + (<usize>i << 3), ids.b(i));
}

@inline function vectorStart(end: usize): usize {
  return ((end + 4 + 7) & ~<usize>7) - 4;
}

/** Writes a vector's count at `start` and its offset into the table's field. */
@inline function vectorHeader(body: usize, field: usize, start: usize, count: u32): void {
  store<u32>(body + TABLE_POS + field, <u32>(start - (TABLE_POS + field)));
  store<u32>(body + start, count);
}

/**
 * The size-prefixed TickResult of this tick, its sightings aside
 * (writeSightings). `changed` and `removed` are sorted (0, id, slot) keys.
 * `previous` gives, beside each changed record, its record at the start of
 * the tick (the journal's copy; zeroed for a created entity).
 */
export function writeTickResult(changed: KeyList, removed: KeyList): usize {
  const nEffects = <u32>(effects.len / Effect.SIZE);
  const nRecipients = <u32>(recipients.len >> 3);
  const nChanged = <u32>changed.len;
  const effectsAt = vectorStart(HEADER_END);
  const recipientsAt = vectorStart(effectsAt + 4 + <usize>nEffects * Effect.SIZE);
  const changedAt = vectorStart(recipientsAt + 4 + (<usize>nRecipients << 3));
  const removedAt = vectorStart(changedAt + 4 + <usize>nChanged * Entity.SIZE);
  const previousAt = vectorStart(removedAt + 4 + (<usize>removed.len << 3));
  const zonesBytes = <usize>zoneCount * Zone.SIZE;
  const zonesAt = vectorStart(previousAt + 4 + <usize>nChanged * Entity.SIZE);
  const transitAt = vectorStart(zonesAt + 4 + zonesBytes);
  const size = transitAt + 4 + transitBytes();

  out.reserve(size + 4096 + 16);
  const skew = (inputAddress + 2048 - out.ptr) & 4088;
  const body = out.ptr + skew + 8;
  // Zeroed first: the table's padding and the gaps between vectors (the buffer is reused).
  memory.fill(body, 0, size);
  store<u32>(body - 4, <u32>size);
  store<u32>(body, <u32>TABLE_POS);
  const vt = body + 4;
  store<u16>(vt, <u16>(4 + 2 * TickResult.FIELDS), 0);
  store<u16>(vt, <u16>TickResult.INLINE_SIZE, 2);
  store<u16>(vt, <u16>TickResult.TICK_INLINE, 4);
  store<u16>(vt, <u16>TickResult.NEXT_ID_INLINE, 6);
  store<u16>(vt, <u16>TickResult.EFFECTS_INLINE, 8);
  store<u16>(vt, <u16>TickResult.RECIPIENTS_INLINE, 10);
  store<u16>(vt, <u16>TickResult.CHANGED_INLINE, 12);
  store<u16>(vt, <u16>TickResult.REMOVED_INLINE, 14);
  store<u16>(vt, <u16>TickResult.PREVIOUS_INLINE, 16);
  store<u16>(vt, <u16>TickResult.ZONES_INLINE, 18);
  store<u16>(vt, <u16>TickResult.TRANSIT_INLINE, 20);
  store<i32>(body + TABLE_POS, <i32>(TABLE_POS - 4));
  store<u64>(body + TABLE_POS + TickResult.TICK_INLINE, tick);
  store<u64>(body + TABLE_POS + TickResult.NEXT_ID_INLINE, nextId);

  vectorHeader(body, TickResult.EFFECTS_INLINE, effectsAt, nEffects);
  memory.copy(body + effectsAt + 4, effects.ptr, effects.len);

  vectorHeader(body, TickResult.RECIPIENTS_INLINE, recipientsAt, nRecipients);
  memory.copy(body + recipientsAt + 4, recipients.ptr, recipients.len);

  vectorHeader(body, TickResult.CHANGED_INLINE, changedAt, nChanged);
  vectorHeader(body, TickResult.PREVIOUS_INLINE, previousAt, nChanged);
  let p = body + changedAt + 4;
  let q = body + previousAt + 4;
  for (let i = 0; i < changed.len; i++, p += Entity.SIZE, q += Entity.SIZE) {
    const slot = <i32>changed.v(i);
    memory.copy(p, rec(slot), Entity.SIZE);
    const j = journalIndex(slot);
    if (!(entryFlags(j) & CREATED)) memory.copy(q, entryOld(j), Entity.SIZE);
  }

  vectorHeader(body, TickResult.REMOVED_INLINE, removedAt, <u32>removed.len);
  p = body + removedAt + 4;
  for (let i = 0; i < removed.len; i++, p += 8) store<u64>(p, removed.b(i));

  vectorHeader(body, TickResult.ZONES_INLINE, zonesAt, <u32>zoneCount);
  if (zoneCount > 0) memory.copy(body + zonesAt + 4, zoneAt(0), zonesBytes);

  vectorHeader(body, TickResult.TRANSIT_INLINE, transitAt, <u32>(transitBytes() / Transit.SIZE));
  memory.copy(body + transitAt + 4, transitItems(), transitBytes());
  return body - 4;
}

/**
 * The tick's area-of-interest effects (`views`, sorted) as Effect structs,
 * after a u32 count.
 */
export function writeSightings(): usize {
  sights.clear();
  const at = sights.append(4 + <usize>views.len * Effect.SIZE);
  store<u32>(at, <u32>views.len);
  let p = at + 4;
  memory.fill(p, 0, <usize>views.len * Effect.SIZE);
  for (let i = 0; i < views.len; i++, p += Effect.SIZE) {
    Effect.set_subject(p, views.a(i));
    Effect.set_object(p, views.b(i));
    Effect.set_kind(p, <u8>views.v(i));
  }
  return at;
}

/**
 * The canonical encoding (docs/rules.md, "World hash") after a u32 length:
 *   seed u64 | tick u64 | next_id u64 | zone_count u32 | zones | entity_count u32 | entities
 *   | transit_count u32 | transit
 */
export function writeCanonical(ordered: KeyList): usize {
  const zonesBytes = <usize>zoneCount * Zone.SIZE;
  const size: usize = 24 + 4 + zonesBytes + 4 + <usize>ordered.len * Entity.SIZE + 4 + transitBytes();
  canon.reserve(size + 4);
  const base = canon.ptr;
  store<u32>(base, <u32>size);
  let p = base + 4;
  store<u64>(p, seed, 0);
  store<u64>(p, tick, 8);
  store<u64>(p, nextId, 16);
  store<u32>(p, <u32>zoneCount, 24);
  p += 28;
  if (zoneCount > 0) memory.copy(p, zoneAt(0), zonesBytes);
  p += zonesBytes;
  store<u32>(p, <u32>ordered.len);
  p += 4;
  for (let i = 0; i < ordered.len; i++, p += Entity.SIZE) {
    memory.copy(p, rec(<i32>ordered.v(i)), Entity.SIZE);
  }
  store<u32>(p, <u32>(transitBytes() / Transit.SIZE));
  memory.copy(p + 4, transitItems(), transitBytes());
  return base;
}
