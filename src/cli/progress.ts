/**
 * The progress bar long interactive runs draw on standard error (npm
 * `cli-progress`, loaded only when a bar may be drawn). A bar appears only for
 * a long run, is cleared when it stops (done, failed or interrupted), so
 * `compare`'s bars never stack, and gives the cursor back.
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

/** Shows the cursor again (cli-progress hides it while a bar is drawn). */
export const SHOW_CURSOR = "\x1b[?25h";

/** Loads npm cli-progress when `io` may draw bars. */
export async function loadProgress(io: CliIo): Promise<void> {
  if (io.interactive && !cliProgress) {
    cliProgress = (await import("npm:cli-progress@^3.12.0")).default as CliProgress;
  }
}

/** A progress bar: `update` as work is done, `stop` once (it clears the bar). */
export interface Progress {
  /** Reports `done` of `total`; the bar appears once `total` is large enough to need one. */
  update(done: number, total: number): void;
  /** Clears the bar, if one was drawn, and shows the cursor. */
  stop(): void;
}

/**
 * A progress bar on standard error for long interactive runs; undefined when
 * `io` is not interactive. `minTotal` is the smallest `total` worth a bar
 * (events, or bytes of a trace file).
 */
export function progressBar(io: CliIo, label = "events", minTotal = 50_000): Progress | undefined {
  if (!io.interactive || !cliProgress) return undefined;
  const module = cliProgress;
  let bar: InstanceType<CliProgress["SingleBar"]> | undefined;
  let stopped = false;
  return {
    update(done, total) {
      if (stopped) return;
      if (!bar) {
        if (total < minTotal) return; // short runs finish before a bar helps
        bar = new module.SingleBar(
          {
            format: `${label} [{bar}] {percentage}% | eta {eta}s`,
            hideCursor: true,
            clearOnComplete: true,
            stopOnComplete: false,
            ...(io.terminal ? { stream: io.terminal } : {}),
          },
          module.Presets.shades_classic,
        );
        bar.start(total, 0);
      }
      bar.update(Math.min(done, total));
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (!bar) return;
      bar.stop(); // clearOnComplete: the line is erased
      (io.terminal ?? stderrTerminal()).write(SHOW_CURSOR);
    },
  };
}

/** Standard error as a terminal, for the cursor escape. */
function stderrTerminal(): { write(text: string): unknown } {
  const encoder = new TextEncoder();
  return { write: (text) => Deno.stderr.writeSync(encoder.encode(text)) };
}
