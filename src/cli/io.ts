/**
 * Where the command line writes, and what it may be interrupted by.
 *
 * @module
 */

/** A terminal progress bars draw on (Node's `process.stderr` shape, as npm cli-progress uses it). */
export interface ProgressTerminal {
  /** Writes text (with escape sequences). */
  write(text: string): unknown;
  /** True for a terminal. */
  isTTY?: boolean;
  /** Its width in columns. */
  columns?: number;
}

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  /** Standard output. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** True when progress bars may be drawn on standard error. */
  interactive: boolean;
  /** Where bars are drawn (default: standard error). */
  terminal?: ProgressTerminal;
  /**
   * Stops a run as Ctrl-C does (default: SIGINT, listened to while a command
   * runs). The report covers what was applied until then.
   */
  interrupt?: AbortSignal;
  /** Standard input, for `--trace -` (default: Deno's). */
  stdin?: ReadableStream<Uint8Array>;
}
