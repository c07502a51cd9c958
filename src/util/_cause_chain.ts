/**
 * Walking the errors an error wraps (`cause`), as the bus wraps what a
 * listener threw and a failed region wraps the error that failed it.
 *
 * @module
 */

/** `e` and the errors it wraps, outermost first (at most 8). */
export function causeChain(e: unknown): unknown[] {
  const chain = [e];
  while (chain.length < 8 && e instanceof Error && e.cause !== undefined) chain.push(e = e.cause);
  return chain;
}
