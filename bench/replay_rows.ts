/**
 * What replaying a trace adds to the conversions it holds.
 *
 * A QEMU trace log of 1M `kvm_convert_memory` lines (4-64 KiB DMA buffers
 * shared and freed in a window of a 1 TiB guest, at most 64 in flight) is
 * written to a temporary file once. Then, in one process:
 *
 * - **reader**: the streaming trace reader alone, in-thread (open, read, classify every
 *   line), applying nothing;
 * - **direct**: the same conversions, parsed beforehand, made on a freshly
 *   built host (the 1 TiB region with the simulated KVM attributes plugin)
 *   with `Region.convert`;
 * - **replay**: `runSession` on the same host configuration with the trace:
 *   reader (on a worker thread: the file is over 8 MiB), runner, counting,
 *   and the invariant check at the end.
 *
 * The target: the replay adds at most 25% to the direct conversions. Each is
 * the best of `reps` runs (median in the JSON). Run alone:
 * `deno run -A bench/replay_rows.ts [--conversions N] [--reps N]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { buildHost, parseHostConfig, runSession } from "../host.ts";
import { openTraceStream } from "../src/host/trace/stream.ts";
import { Prng } from "../src/util/prng.ts";
import { timedMeasurement } from "./measurement.ts";
import type { ReportRow, RowSource } from "./report.ts";

const BASE = 2 ** 32;

/** The host every variant runs on: a 1 TiB region with the KVM attributes plugin. */
const CONFIG = {
  name: "replay",
  regions: [{ name: "ram", size: "1TiB", base: BASE }],
  workload: { name: "boot" },
};

/** Writes the trace; returns its path and the conversions it holds, parsed. */
async function writeTrace(count: number, seed: number) {
  const rng = new Prng(seed);
  const path = await Deno.makeTempFile({ prefix: "memstate_replay_", suffix: ".log" });
  const offsets = new Float64Array(count), sizes = new Float64Array(count);
  const toShared = new Uint8Array(count);
  const inflight: [number, number][] = [];
  const window = 512 * 2 ** 30; // the middle of the guest
  const file = await Deno.open(path, { write: true });
  const encoder = new TextEncoder();
  let text = "";
  for (let i = 0; i < count; i++) {
    let gpa: number, size: number, shared: boolean;
    if (inflight.length === 64 || (inflight.length > 0 && rng.chance(0.5))) {
      const k = rng.int(inflight.length);
      [gpa, size] = inflight[k];
      inflight[k] = inflight[inflight.length - 1];
      inflight.pop();
      shared = false;
    } else {
      size = (1 + rng.int(16)) * 4096;
      gpa = BASE + window + rng.int(65536) * 4096;
      inflight.push([gpa, size]);
      shared = true;
    }
    offsets[i] = gpa - BASE;
    sizes[i] = size;
    toShared[i] = shared ? 1 : 0;
    text += `48230@1700000000.${String(i % 1e6).padStart(6, "0")}:kvm_convert_memory start 0x${
      gpa.toString(16)
    } size 0x${size.toString(16)} ${shared ? "private_to_shared" : "shared_to_private"}\n`;
    if (text.length > 1 << 20) {
      await file.write(encoder.encode(text));
      text = "";
    }
  }
  await file.write(encoder.encode(text));
  file.close();
  return { path, offsets, sizes, toShared };
}

/** The replay row: direct conversions (baseline), full replay, and the reader alone. */
export async function replayRows(count = 1_000_000, reps = 3): Promise<ReportRow[]> {
  const trace = await writeTrace(count, 3);
  const config = parseHostConfig(CONFIG, "replay.json");
  const reader: number[] = [], direct: number[] = [], replay: number[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      {
        const t0 = performance.now();
        // In-thread: what reading costs the thread that does it (the replay reads on a worker).
        const stream = await openTraceStream(trace.path, { worker: false });
        let items = 0;
        for await (const batch of stream.batches()) items += batch.length;
        reader.push(performance.now() - t0);
        if (items !== count) throw new Error(`reader saw ${items} items, expected ${count}`);
      }
      {
        using host = buildHost(config);
        const region = host.regions[0];
        const t0 = performance.now();
        for (let i = 0; i < count; i++) {
          region.convert(
            trace.offsets[i],
            trace.sizes[i],
            trace.toShared[i] ? "shared" : "private",
          );
        }
        direct.push(performance.now() - t0);
      }
      {
        const t0 = performance.now();
        const { report } = await runSession(config, { trace: trace.path });
        replay.push(performance.now() - t0);
        // Overlapping buffers make a few conversions no-ops; none may fail or be rejected.
        const c = report.conversions;
        if (c.applied + c.noop !== count) {
          throw new Error(`replay applied ${c.applied} and skipped ${c.noop} of ${count}`);
        }
      }
    }
  } finally {
    await Deno.remove(trace.path);
  }
  const lines = `${count.toLocaleString("en-US")} kvm_convert_memory lines of a 1 TiB guest`;
  return [{
    workload: "replay 1 TiB",
    description: `${lines} (KVM attributes plugin): the whole replay against direct conversions`,
    unit: "conversion",
    results: [
      timedMeasurement("direct", direct, count),
      timedMeasurement("replay", replay, count, "reader, runner and invariant check, from a file"),
    ],
    targets: [{ metric: "time", max: 1.25 }],
  }, {
    workload: "replay 1 TiB: reader",
    description: `${lines}: the reader alone (no host), against the direct conversions`,
    unit: "conversion",
    results: [
      timedMeasurement("direct", direct, count),
      timedMeasurement("reader only", reader, count, "read and classify every line, in-thread"),
    ],
    targets: [],
  }];
}

/** The rows for `bench/report.ts`. */
export const replaySource: RowSource = { name: "replay", rows: () => replayRows() };

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { conversions: { type: "string" }, reps: { type: "string" } },
  });
  const [row, reader] = await replayRows(
    Number(values.conversions ?? 1_000_000),
    Number(values.reps ?? 3),
  );
  const direct = row.results[0].seconds!;
  for (const m of [...row.results, reader.results[1]]) {
    const us = (s: number) => ((s * 1e6) / m.units).toFixed(3);
    console.log(
      `${m.store.padEnd(12)} ${us(m.seconds!)} us/conversion (median ${us(m.medianSeconds!)}), ${
        (m.seconds! / direct).toFixed(2)
      }x direct`,
    );
  }
}
