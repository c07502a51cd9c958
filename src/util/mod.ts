/**
 * Small helpers shared across the package; the seeded PRNG is public (the
 * workloads, fault injection and property tests use it, and so may users).
 *
 * @module
 */

export { Prng, seedFromEnv } from "./prng.ts";
