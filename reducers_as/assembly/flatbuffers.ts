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

/**
 * The root table of a frame of `len` bytes at `buf`, trapping when the root
 * offset or the table's vtable points outside it (a bad frame is a host bug).
 */
export function checkedRoot(buf: usize, len: usize): usize {
  assert(len >= 8 && (buf & 3) == 0, "frame: too short or misaligned");
  const root = <usize>load<u32>(buf);
  assert(root + 4 <= len, "frame: root table outside the frame");
  const table = buf + root;
  const vtable = table - <usize>load<i32>(table);
  assert(vtable >= buf && vtable + 4 <= buf + len, "frame: vtable outside the frame");
  assert(vtable + <usize>load<u16>(vtable) <= buf + len, "frame: vtable runs past the end");
  return table;
}

/**
 * Number of `elemSize`-byte elements of a vector (0 for an absent one),
 * trapping when they run past `end` (the frame's end).
 */
export function checkedLength(vec: usize, elemSize: usize, end: usize): u32 {
  if (vec == 0) return 0;
  assert(vec + 4 <= end, "frame: vector outside the frame");
  const n = load<u32>(vec);
  assert(<u64>vec + 4 + <u64>n * <u64>elemSize <= <u64>end, "frame: vector runs past the end");
  return n;
}
