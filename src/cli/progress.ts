/**
 * The progress bar long interactive runs draw on standard error (npm
 * `cli-progress`, loaded only when a bar may be drawn).
 *
 * @module
 */

import type { CliIo } from "./io.ts";

/** What the CLI uses of npm `cli-progress` (typed here: its @types pull in @types/node). */
interface CliProgress {
  SingleBar: new (options: Record<string, unknown>, preset: unknown) => {
    start(total: number, value: number): void;
    update(value: number): void;
    stop(): void;
  };
  Presets: { shades_classic: unknown };
}

/** npm cli-progress, loaded by {@link loadProgress} before the first bar. */
let cliProgress: CliProgress | undefined;

/** Loads npm cli-progress when `io` may draw bars. */
export async function loadProgress(io: CliIo): Promise<void> {
  if (io.interactive && !cliProgress) {
    cliProgress = (await import("npm:cli-progress@^3.12.0")).default as CliProgress;
  }
}

/** A progress bar on standard error for long interactive runs; undefined otherwise. */
export function progressBar(io: CliIo, label = "events"):
  | { update: (done: number, total: number) => void; stop: () => void }
  | undefined {
  if (!io.interactive || !cliProgress) return undefined;
  let bar: InstanceType<CliProgress["SingleBar"]> | undefined;
  return {
    update(done, total) {
      if (!bar) {
        if (total < 50_000) return; // short runs finish before a bar helps
        bar = new cliProgress!.SingleBar(
          { format: `${label} [{bar}] {percentage}% {value}/{total} eta {eta}s`, hideCursor: true },
          cliProgress!.Presets.shades_classic,
        );
        bar.start(total, 0);
      }
      bar.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}
