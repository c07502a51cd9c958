// Test switches read from the environment, so that the default suite stays quick
// while the mutation check and `deno task test:full` run everything.
import { seedFromEnv } from "../../src/util/prng.ts";

/**
 * True when `MEMSTATE_EXHAUSTIVE` is set to anything but "" or "0": sweeps then
 * try every case instead of a seeded sample (`deno task test:full`,
 * `deno task mutate`). False without env permission.
 */
export function exhaustive(): boolean {
  try {
    const raw = Deno.env.get("MEMSTATE_EXHAUSTIVE");
    return raw !== undefined && raw !== "" && raw !== "0";
  } catch {
    return false;
  }
}

/** The test's seed (`MEMSTATE_SEED` or a fresh one), printed with how to replay it. */
export function testSeed(what: string): number {
  const seed = seedFromEnv();
  console.log(`${what}: seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  return seed;
}
