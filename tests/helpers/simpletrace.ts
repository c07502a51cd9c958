// Writes QEMU simpletrace files (log format 4, as trace/simple.c writes them)
// for tests and benchmarks: the header, one event-mapping record per event
// name, then event records whose arguments are u64 or strings.

const HEADER_MAGIC = 0xf2b177cb0aa429b4n;

/** A simpletrace file being built in memory. */
export class SimpletraceWriter {
  #parts: Uint8Array[] = [];
  #ids = new Map<string, number>();
  #little: boolean;

  constructor(events: string[], options: { little?: boolean; version?: number } = {}) {
    this.#little = options.little ?? true;
    this.#u64(0xffffffffffffffffn);
    this.#u64(HEADER_MAGIC);
    this.#u64(BigInt(options.version ?? 4));
    events.forEach((name, id) => {
      this.#ids.set(name, id);
      const bytes = new TextEncoder().encode(name);
      this.#u64(0n); // TRACE_RECORD_TYPE_MAPPING
      this.#u64(BigInt(id));
      this.#u32(bytes.length);
      this.#parts.push(bytes);
    });
  }

  /** An event record: integers are written as u64, strings as u32 length + bytes. */
  event(name: string, args: (number | bigint | string)[], pid = 4242): this {
    const id = this.#ids.get(name);
    if (id === undefined) throw new Error(`no mapping for ${name}`);
    return this.raw(BigInt(id), args, pid);
  }

  /** An event record with any id (the dropped-events id, an unmapped one). */
  raw(id: bigint, args: (number | bigint | string)[], pid = 4242): this {
    const body: Uint8Array[] = [];
    for (const a of args) {
      if (typeof a === "string") {
        const bytes = new TextEncoder().encode(a);
        body.push(this.#encode(4, (v) => v.setUint32(0, bytes.length, this.#little)), bytes);
      } else {
        const value = BigInt.asUintN(64, BigInt(a));
        body.push(this.#encode(8, (v) => v.setBigUint64(0, value, this.#little)));
      }
    }
    const length = 24 + body.reduce((n, b) => n + b.length, 0);
    this.#u64(1n); // TRACE_RECORD_TYPE_EVENT
    this.#u64(id);
    this.#u64(1_700_000_000_000_000_000n);
    this.#u32(length);
    this.#u32(pid);
    this.#parts.push(...body);
    return this;
  }

  /** The file's bytes. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  #encode(n: number, set: (v: DataView) => void): Uint8Array {
    const bytes = new Uint8Array(n);
    set(new DataView(bytes.buffer));
    return bytes;
  }
  #u64(v: bigint) {
    this.#parts.push(this.#encode(8, (d) => d.setBigUint64(0, v, this.#little)));
  }
  #u32(v: number) {
    this.#parts.push(this.#encode(4, (d) => d.setUint32(0, v, this.#little)));
  }
}
