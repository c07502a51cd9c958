/**
 * Where the command line writes.
 *
 * @module
 */

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  /** Standard output. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** True when progress bars may be drawn on standard error. */
  interactive: boolean;
}
