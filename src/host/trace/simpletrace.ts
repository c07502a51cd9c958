/**
 * QEMU's binary trace files (the `simple` trace backend, `-trace
 * events=...,file=...`), read a chunk at a time.
 *
 * The layout is the one QEMU's trace/simple.c writes and scripts/simpletrace.py
 * reads (log format version 4):
 *
 * - a header of three u64: `HEADER_EVENT_ID` (all ones), `HEADER_MAGIC`
 *   (0xf2b177cb0aa429b4) and the version (4);
 * - then records, each starting with a u64 record type:
 *   - `TRACE_RECORD_TYPE_MAPPING` (0): u64 event id, u32 name length, the
 *     name (trace/simple.c `st_write_event_mapping`, written for every event
 *     when the file is opened), which maps ids to event names;
 *   - `TRACE_RECORD_TYPE_EVENT` (1): a `TraceRecord` header (u64 event id,
 *     u64 timestamp_ns, u32 length of the whole record in bytes, u32 pid),
 *     then the arguments: a u64 for every integer or pointer argument, a u32
 *     length and the bytes for every string (`trace_record_write_u64` /
 *     `trace_record_write_str`). The event id `DROPPED_EVENT_ID` (all ones
 *     minus one) has one u64 argument: how many events QEMU dropped.
 *
 * Numbers are in the writing host's byte order (simpletrace.py reads them
 * with `=`, native order); the magic number tells which. The format carries no
 * argument types: simpletrace.py takes them from trace-events-all. This reader
 * needs only two events, with their arguments as accel/kvm/trace-events
 * declares them: `kvm_convert_memory(uint64_t start, uint64_t size, const char
 * *msg)` and `kvm_set_user_memory(uint16_t as, uint16_t slot, uint32_t flags,
 * uint64_t guest_phys_addr, uint64_t memory_size, uint64_t userspace_addr,
 * uint32_t fd, uint64_t fd_offset, int ret)` (7 arguments before guest_memfd:
 * no `fd`, `fd_offset`); every other record is skipped by its length.
 *
 * A record's number (1-based, counting event records) stands for the line
 * number in messages.
 *
 * @module
 */

import type { BadLine, TraceItem } from "./event.ts";
import { checkRange, TraceLineError } from "./event.ts";
import type { TraceStats } from "./stats.ts";

/** trace/simple.c `HEADER_MAGIC`. */
export const SIMPLETRACE_MAGIC = 0xf2b177cb0aa429b4n;
/** The log format version read here (trace/simple.c `HEADER_VERSION`). */
export const SIMPLETRACE_VERSION = 4;
const HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 24;
const ALL_ONES = 0xffffffffffffffffn;
const DROPPED_EVENT_ID = ALL_ONES - 1n;
/** trace/simple.c `TRACE_BUF_LEN`: no record is longer than QEMU's trace buffer. */
const MAX_RECORD_BYTES = 4096 * 64;
/** Event names are short identifiers; a longer "name" means a corrupt file. */
const MAX_NAME_BYTES = 1024;

/**
 * True when `head` (at least 16 bytes) starts a simpletrace file: the header
 * event id and the magic number, in either byte order.
 */
export function isSimpletrace(head: Uint8Array): boolean {
  if (head.length < 16) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getBigUint64(0, true) !== ALL_ONES) return false;
  return view.getBigUint64(8, true) === SIMPLETRACE_MAGIC ||
    view.getBigUint64(8, false) === SIMPLETRACE_MAGIC;
}

/** The problem the reader hit that ends the file (corrupt or truncated). */
class Corrupt extends Error {}

/**
 * Reads a simpletrace file from `chunks`, yielding the items of each chunk.
 * A file that is not simpletrace version 4, or that is corrupt, yields one
 * bad line saying so and stops; a record cut off by the end of the file is
 * reported the same way.
 */
export async function* readSimpletrace(
  chunks: AsyncIterable<Uint8Array>,
  stats: TraceStats,
): AsyncGenerator<TraceItem[]> {
  stats.format = "simpletrace";
  stats.unit = "record";
  const names = new Map<bigint, string>();
  let little = true;
  let headerRead = false;
  let record = 0; // event records seen
  let offset = 0; // file offset of buf[0]
  let buf = new Uint8Array(0);
  const bad = (message: string): BadLine => {
    stats.unreadable++;
    return { op: "bad-line", line: Math.max(record, 1), message };
  };
  for await (const chunk of chunks) {
    // At most one partial record is carried over: the copy stays small.
    const joined = new Uint8Array(buf.length + chunk.length);
    joined.set(buf);
    joined.set(chunk, buf.length);
    buf = joined;
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const u64 = (at: number) => view.getBigUint64(at, little);
    const u32 = (at: number) => view.getUint32(at, little);
    const items: TraceItem[] = [];
    let at = 0;
    try {
      if (!headerRead) {
        if (buf.length < HEADER_BYTES) continue;
        if (!isSimpletrace(buf)) throw new Corrupt("not a QEMU simpletrace file (bad magic)");
        little = view.getBigUint64(8, true) === SIMPLETRACE_MAGIC;
        const version = view.getBigUint64(16, little);
        if (version !== BigInt(SIMPLETRACE_VERSION)) {
          throw new Corrupt(
            `simpletrace log version ${version} is not supported (only version ` +
              `${SIMPLETRACE_VERSION}, which QEMU writes since event-mapping records were added)`,
          );
        }
        headerRead = true;
        at = HEADER_BYTES;
      }
      while (buf.length - at >= 8) {
        const type = u64(at);
        if (type === 0n) {
          if (buf.length - at < 20) break;
          const length = u32(at + 16);
          if (length > MAX_NAME_BYTES) {
            throw new Corrupt(
              `event-mapping record at byte ${offset + at}: name of ${length} bytes`,
            );
          }
          if (buf.length - at < 20 + length) break;
          const name = new TextDecoder().decode(buf.subarray(at + 20, at + 20 + length));
          names.set(u64(at + 8), name);
          at += 20 + length;
        } else if (type === 1n) {
          if (buf.length - at < 8 + RECORD_HEADER_BYTES) break;
          const length = u32(at + 8 + 16);
          if (length < RECORD_HEADER_BYTES || length > MAX_RECORD_BYTES) {
            throw new Corrupt(
              `record ${record + 1} at byte ${offset + at}: length ${length} is impossible ` +
                `(${RECORD_HEADER_BYTES} to ${MAX_RECORD_BYTES})`,
            );
          }
          if (buf.length - at < 8 + length) break;
          record++;
          stats.lines++;
          const item = decodeEvent(view, at + 8, length, little, names, record);
          if (item === null) stats.other++;
          else if (item.op === "bad-line") {
            stats.unreadable++;
            items.push(item);
          } else {
            if (item.op === "memslot") stats.memslots++;
            else stats.events++;
            items.push(item);
          }
          at += 8 + length;
        } else {
          throw new Corrupt(`unknown record type ${type} at byte ${offset + at}`);
        }
      }
    } catch (e) {
      if (!(e instanceof Corrupt)) throw e;
      items.push(bad(`${e.message}; the rest of the file is not read`));
      yield items;
      return;
    }
    offset += at;
    buf = buf.slice(at);
    if (items.length > 0) yield items;
  }
  if (!headerRead) {
    yield [bad(`not a QEMU simpletrace file: ${buf.length} bytes, shorter than its header`)];
  } else if (buf.length > 0) {
    yield [bad(`the file ends inside a record (${buf.length} bytes at byte ${offset})`)];
  }
}

/** The item for the event record at `at` (its `TraceRecord` header), or null to skip it. */
function decodeEvent(
  view: DataView,
  at: number,
  length: number,
  little: boolean,
  names: Map<bigint, string>,
  record: number,
): TraceItem | null {
  const id = view.getBigUint64(at, little);
  const args = at + RECORD_HEADER_BYTES;
  const argBytes = length - RECORD_HEADER_BYTES;
  const bad = (message: string): BadLine => ({ op: "bad-line", line: record, message });
  if (id === DROPPED_EVENT_ID) {
    const dropped = argBytes >= 8 ? view.getBigUint64(args, little) : 0n;
    return bad(`QEMU dropped ${dropped} trace events here (its trace buffer was full)`);
  }
  const name = names.get(id);
  if (name === undefined) {
    return bad(`event id ${id} has no event-mapping record`);
  }
  const u64 = (k: number, field: string) => {
    const value = view.getBigUint64(args + 8 * k, little);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new TraceLineError(
        record,
        `${field}: must be at most 2^53 - 1, got 0x${value.toString(16)}`,
      );
    }
    return Number(value);
  };
  try {
    if (name === "kvm_convert_memory") {
      if (argBytes < 20) {
        return bad(`kvm_convert_memory: ${argBytes} bytes of arguments, expected 20 or more`);
      }
      const gpa = u64(0, "start");
      const size = u64(1, "size");
      const msgLength = view.getUint32(args + 16, little);
      if (20 + msgLength > argBytes) {
        return bad(`kvm_convert_memory: msg of ${msgLength} bytes does not fit the record`);
      }
      const msg = new TextDecoder().decode(
        new Uint8Array(view.buffer, view.byteOffset + args + 20, Math.min(msgLength, 64)),
      );
      const to = msg === "private_to_shared"
        ? "shared"
        : msg === "shared_to_private"
        ? "private"
        : undefined;
      if (to === undefined) {
        return bad(
          `kvm_convert_memory: unknown direction ${JSON.stringify(msg)} (expected ` +
            `shared_to_private or private_to_shared)`,
        );
      }
      checkRange(gpa, size, record);
      return { op: "convert", gpa, size, to, line: record };
    }
    if (name === "kvm_set_user_memory") {
      // 9 arguments since guest_memfd (fd, fd_offset), 7 before.
      const count = argBytes / 8;
      if (count !== 9 && count !== 7) {
        return bad(`kvm_set_user_memory: ${argBytes} bytes of arguments, expected 56 or 72`);
      }
      const ret = Number(BigInt.asIntN(64, view.getBigUint64(args + 8 * (count - 1), little)));
      const slot = {
        op: "memslot" as const,
        as: u64(0, "as"),
        slot: u64(1, "slot"),
        flags: u64(2, "flags"),
        gpa: u64(3, "guest_phys_addr"),
        size: u64(4, "memory_size"),
        ret,
        line: record,
      };
      if (slot.size > 0) checkRange(slot.gpa, slot.size, record);
      return slot;
    }
  } catch (e) {
    if (e instanceof TraceLineError) return bad(`${name}: ${e.reason}`);
    throw e;
  }
  return null;
}
