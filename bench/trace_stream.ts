/**
 * A multi-GB trace replayed with flat memory: this benchmark generates a QEMU
 * trace log on the fly (the memslots QEMU logs at start, then
 * `kvm_convert_memory` churn of a guest's DMA buffers, one line in ten, among
 * vCPU exits and memory faults, as a real log interleaves them) and has the real command line
 * replay it, `memstate run --trace - --json` with no configuration (the
 * regions come from the trace). The trace goes through a pipe, so it never
 * exists whole anywhere; with `--file` it is written to a temporary file
 * first (free disk space permitting) and read from there.
 *
 * While the child runs, its resident memory (VmRSS) is sampled from
 * /proc/<pid>/status every tenth of the input, and its peak (VmHWM) is
 * printed at the end: flat memory means the peak after 4 GiB is what it was
 * after the first few hundred MiB.
 *
 * ```sh
 * npx -y deno@2 run -A bench/trace_stream.ts                 # 4 GiB through a pipe
 * npx -y deno@2 run -A bench/trace_stream.ts --gib 4 --file  # 4 GiB from a file (read on a worker)
 * ```
 *
 * @module
 */

import { parseOptions, usage } from "./cli_args.ts";
import { Prng } from "../src/util/prng.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** Bytes of trace text generated per write. */
const CHUNK = 4 * MiB;

/**
 * Generates `bytes` of trace text in chunks: the two guest_memfd memslots of
 * a 2 GiB + 14 GiB guest, then DMA buffers of 4-64 KiB shared and freed again
 * in a 256 MiB window above 4 GiB (at most 64 in flight, so the extent count
 * stays bounded), one conversion line in ten, among vCPU exits and memory
 * faults. Eight different 4 MiB blocks, each of which frees every buffer it
 * shared, are cycled through, so generating costs next to nothing and the
 * replay's work is the same for every block.
 */
export function* traceChunks(bytes: number, seed = 1): Generator<Uint8Array> {
  const header = new TextEncoder().encode(
    "48211@1700000000.100000:kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x4 gpa=0x0 " +
      "size=0x80000000 ua=0x7f3a40000000 guest_memfd=27 guest_memfd_offset=0x0 ret=0\n" +
      "48211@1700000000.100251:kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 " +
      "gpa=0x100000000 size=0x380000000 ua=0x7f3ac0000000 guest_memfd=27 " +
      "guest_memfd_offset=0x80000000 ret=0\n",
  );
  yield header;
  const blocks = Array.from({ length: 8 }, (_, i) => block(seed + i));
  let written = header.length;
  for (let i = 0; written < bytes; i++) {
    const b = blocks[i % blocks.length];
    written += b.length;
    yield b;
  }
}

/** One block of {@link traceChunks}: about {@link CHUNK} bytes that leave the window private. */
function block(seed: number): Uint8Array {
  const rng = new Prng(seed);
  const window = 0x1_0000_0000;
  const inflight: [number, number][] = [];
  const lines: string[] = [];
  const convert = (start: number, pages: number, to: string, stamp: string) =>
    `${stamp}:kvm_convert_memory start 0x${start.toString(16)} size 0x${
      (pages * 4096).toString(16)
    } ${to}`;
  let size = 0;
  for (let t = 0; size < CHUNK; t++) {
    const stamp = `48230@${1700000000 + seed}.${String(t % 1e6).padStart(6, "0")}`;
    let line: string;
    const kind = t % 10;
    if (kind === 0) {
      if (inflight.length === 64 || (inflight.length > 0 && rng.chance(0.5))) {
        const k = rng.int(inflight.length);
        const [start, pages] = inflight[k];
        inflight[k] = inflight[inflight.length - 1];
        inflight.pop();
        line = convert(start, pages, "shared_to_private", stamp);
      } else {
        const pages = 1 + rng.int(16);
        const start = window + rng.int(65536 - pages) * 4096;
        inflight.push([start, pages]);
        line = convert(start, pages, "private_to_shared", stamp);
      }
    } else if (kind === 2) {
      line = `${stamp}:kvm_memory_fault start 0x${(window + rng.int(65536) * 4096).toString(16)} ` +
        `size 0x1000 flags 0x8`;
    } else line = `${stamp}:kvm_run_exit cpu_index ${t % 4}, reason 3`;
    lines.push(line);
    size += line.length + 1;
  }
  // Every buffer of the block is freed before the next block starts.
  for (const [start, pages] of inflight) {
    lines.push(convert(start, pages, "shared_to_private", `48230@${1700000000 + seed}.999999`));
  }
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

/** VmRSS and VmHWM of `pid` in bytes, or undefined once it is gone. */
async function memoryOf(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { rss: kb("VmRSS") * 1024, hwm: kb("VmHWM") * 1024 };
  } catch {
    return undefined;
  }
}

const fmt = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

if (import.meta.main) {
  const values = parseOptions("trace_stream", {
    gib: { type: "string", default: "4" },
    file: { type: "boolean", default: false },
  });
  const total = Math.round(Number(values.gib) * GiB);
  // --file writes the whole trace to the temporary directory first: a cap of a
  // terabyte stops a slip of the finger from filling the disk.
  // Below one 4 MiB block of conversions (traceChunks) the trace is its memslots alone.
  if (!(total >= CHUNK && total <= 1024 * GiB)) {
    usage(
      "trace_stream",
      `--gib: a number from 0.00390625 (1/256: one 4 MiB block) to 1024, got ${
        JSON.stringify(values.gib)
      }`,
    );
  }
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  let path: string | undefined;
  if (values.file) {
    path = await Deno.makeTempFile({ prefix: "memstate_trace_", suffix: ".log" });
    const file = await Deno.open(path, { write: true });
    for (const chunk of traceChunks(total)) await file.write(chunk);
    file.close();
    console.log(`wrote ${fmt((await Deno.stat(path)).size)} to ${path}`);
  }
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "run", "--trace", path ?? "-", "--json"],
    stdin: path ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const samples: string[] = [];
  let hwm = 0;
  const sample = async (label: string) => {
    const m = await memoryOf(child.pid);
    if (!m) return;
    hwm = Math.max(hwm, m.hwm);
    samples.push(`${label}: rss ${fmt(m.rss)}`);
  };
  const output = new Response(child.stdout).text();
  const errors = new Response(child.stderr).text();
  if (path) {
    const poll = setInterval(
      () => sample(`${((performance.now() - started) / 1000).toFixed(0)} s`),
      2000,
    );
    await child.status;
    clearInterval(poll);
  } else {
    const writer = child.stdin.getWriter();
    let sent = 0, next = 0.1;
    for (const chunk of traceChunks(total)) {
      await writer.write(chunk);
      sent += chunk.length;
      if (sent >= next * total) {
        await sample(`${fmt(sent)} in`);
        next += 0.1;
      }
    }
    await sample("all in");
    await writer.close();
  }
  const status = await child.status;
  const seconds = (performance.now() - started) / 1000;
  const report = JSON.parse((await output) || "{}");
  if (path) await Deno.remove(path);
  console.log(samples.join("\n"));
  console.log(
    `exit ${status.code}; ${fmt(report.trace?.bytes ?? 0)} of trace, ` +
      `${(report.trace?.lines ?? 0).toLocaleString("en-US")} lines, ` +
      `${(report.conversions?.requested ?? 0).toLocaleString("en-US")} conversions in ` +
      `${seconds.toFixed(1)} s (${
        ((report.trace?.bytes ?? 0) / MiB / seconds).toFixed(0)
      } MiB/s); ` +
      `regions ${report.regions?.map((r: { name: string }) => r.name).join(", ")}`,
  );
  console.log(`peak RSS (VmHWM) of the replay: ${fmt(hwm)}`);
  if (status.code !== 0) console.log(await errors);
}
