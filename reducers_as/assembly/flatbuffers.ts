// The FlatBuffers binary rules the generated accessors rely on.
//
//   buffer:  [root: u32] ... [vtable] ... [table] ... [vector] ...
//   table:   [soffset: i32 = table - vtable] [inline fields]
//   vtable:  [vtable size: u16] [table size: u16] [field offset: u16] x N
//   vector:  [length: u32] [elements]; a field holds u32 (vector - field)

/** The table a buffer's root offset points at. */
@inline export function rootTable(buf: usize): usize {
  return buf + load<u32>(buf);
}

/** A field's offset inside its table, or 0 when the field is absent. */
@inline export function fieldOffset(table: usize, vtableEntry: i32): u32 {
  const vtable = table - <usize>load<i32>(table);
  return vtableEntry < <i32>load<u16>(vtable) ? <u32>load<u16>(vtable + vtableEntry) : 0;
}

/** Number of elements of a vector (0 for an absent one). */
@inline export function vectorLength(vec: usize): u32 {
  return vec == 0 ? 0 : load<u32>(vec);
}

/** Address of a vector's first element. */
@inline export function vectorData(vec: usize): usize {
  return vec + 4;
}
