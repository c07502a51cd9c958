/**
 * The package version, as deno.json states it (a test keeps the two equal).
 *
 * @module
 */

/** memstate's version. */
export const VERSION = "0.1.0";
