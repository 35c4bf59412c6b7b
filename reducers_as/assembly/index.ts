// The reducer ABI, version 4 (docs/abi.md): the module's only exports.
//
// Python calls each export once per tick stage, never per entity or per
// command. transform runs the tick phases of docs/rules.md in order; this is
// the one place they are composed.

import { CommandFrame, Command, Entity, Kind, Transit, WorldFrame, Zone } from "./_generated/schema";
import { checkedLength, checkedRoot, vectorData } from "./flatbuffers";
import { slotOf } from "./ids";
import { clearInterest, interestValid } from "./interest";
import { collectChanges, endJournal } from "./journal";
import { ByteBuf, I32List, KeyList } from "./mem";
import { orderedSlots } from "./order";
import { clearEffects, setInputAddress, writeCanonical, writeSightings, writeTickResult } from "./output";
import { areaOfInterest, watchAll, watchAround } from "./rules/aoi";
import { runCommand } from "./rules/commands";
import { arrive, npcBehaviour, regenerate, respawn } from "./rules/tick";
import { spotKey } from "./spots";
import { loadTransit } from "./transit";
import {
  advanceTick, clearWorld, loadZones, rec, releaseRemoved, reserveSlots, setHeader, tick, upsert,
} from "./world";

const area = changetype<ByteBuf>(memory.data(offsetof<ByteBuf>(), 8));
const changed = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const removed = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const loadedSpots = changetype<KeyList>(memory.data(offsetof<KeyList>(), 8));
const loadedPlayers = changetype<I32List>(memory.data(offsetof<I32List>(), 8));
// A transformed tick waiting for sightings(): its journal and removed slots are kept until then.
let open = false;

/** Where the entity in `slot` is visible, as a spot key into loadedSpots (nothing if it is an offline player). */
function noteSpot(slot: i32): void {
  const p = rec(slot);
  if (Entity.kind(p) == Kind.player && Entity.online(p) == 0) return;
  loadedSpots.push(spotKey(Entity.zone(p), Entity.x(p), Entity.y(p)), 0, 0);
}

export function abi_version(): i32 {
  return 4;
}

/** An 8-aligned input area of at least `size` bytes, reused by every later call. */
export function input(size: i32): usize {
  assert(size >= 0, "input: negative size");
  area.reserve(<usize>size);
  setInputAddress(area.ptr);
  return area.ptr;
}

/**
 * Loads a WorldFrame: the whole world with what is in flight (replace), or
 * upserted entities, and with `arrivals` what is in flight replaced too.
 */
export function project(ptr: usize, len: i32): i32 {
  const table = checkedRoot(ptr, <usize>len);
  dropOpenTick();
  const end = ptr + <usize>len;
  const entities = WorldFrame.entities(table);
  const n = checkedLength(entities, Entity.SIZE, end);
  if (WorldFrame.replace(table) != 0) {
    clearWorld();
    setHeader(WorldFrame.seed(table), WorldFrame.tick(table), WorldFrame.next_id(table));
    const zones = WorldFrame.zones(table);
    loadZones(vectorData(zones), <i32>checkedLength(zones, Zone.SIZE, end));
    reserveSlots(<i32>n);
    for (let i: u32 = 0, p = vectorData(entities); i < n; i++, p += Entity.SIZE) upsert(p);
    const transit = WorldFrame.transit(table);
    loadTransit(vectorData(transit), <i32>checkedLength(transit, Transit.SIZE, end));
    watchAll();
    return 0;
  }
  // What is in flight, replaced as given. A traveller in flight is in no zone
  // and holds no slot, so no kept area holds it: it gets its own at arrival.
  if (WorldFrame.arrivals(table) != 0) {
    const transit = WorldFrame.transit(table);
    loadTransit(vectorData(transit), <i32>checkedLength(transit, Transit.SIZE, end));
  }
  // Entities loaded between ticks: the areas of interest around them change too.
  loadedSpots.clear();
  loadedPlayers.clear();
  for (let i: u32 = 0, p = vectorData(entities); i < n; i++, p += Entity.SIZE) {
    const was = slotOf(Entity.id(p));
    if (was >= 0) noteSpot(was);
    const slot = upsert(p);
    noteSpot(slot);
    if (Entity.kind(rec(slot)) == Kind.player) loadedPlayers.push(slot);
  }
  if (interestValid) watchAround(loadedSpots, loadedPlayers);
  return 0;
}

/** Runs one tick of a CommandFrame; returns the size-prefixed TickResult. */
export function transform(ptr: usize, len: i32): usize {
  const table = checkedRoot(ptr, <usize>len);
  const end = ptr + <usize>len;
  dropOpenTick();
  assert(CommandFrame.tick(table) == tick + 1, "transform: frame tick is not the world's tick + 1");
  const commands = CommandFrame.commands(table);
  const count = checkedLength(commands, Command.SIZE, end);
  const text = CommandFrame.text(table);
  const textLen = checkedLength(text, 1, end);
  const sights = CommandFrame.skip_area_of_interest(table) == 0;

  // Areas kept stale by ticks that skipped them are searched again, in the world as the tick finds it.
  if (sights && !interestValid) watchAll();
  clearEffects();
  advanceTick();
  arrive();
  respawn();
  regenerate();
  npcBehaviour();
  for (let i: u32 = 0, p = vectorData(commands); i < count; i++, p += Command.SIZE) {
    runCommand(p, vectorData(text), textLen);
  }
  collectChanges(changed, removed);
  const result = writeTickResult(changed, removed);
  if (sights) {
    open = true;        // sightings() ends the tick
  } else {
    if (interestValid) clearInterest(false);
    endTick();
  }
  return result;
}

/**
 * The area-of-interest effects of the tick transform just ran, sorted by
 * (observer, entity): a size-prefixed vector of Effect structs. Ends the tick.
 */
export function sightings(): usize {
  assert(open, "sightings: no transformed tick is waiting for them");
  areaOfInterest();
  const result = writeSightings();
  open = false;
  endTick();
  return result;
}

/** Forgets the tick's journal and frees its removed entities' slots. */
function endTick(): void {
  endJournal();
  releaseRemoved();
}

/**
 * A tick whose sightings were never asked for ends here, and with it the
 * kept areas of interest: they no longer match the world.
 */
function dropOpenTick(): void {
  if (!open) return;
  open = false;
  clearInterest(false);
  endTick();
}

/** The canonical world encoding after a u32 length (docs/rules.md, "World hash"). */
export function canonical(): usize {
  return writeCanonical(orderedSlots());
}
