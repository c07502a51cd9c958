/**
 * Reading host configurations: from a file ({@link loadHostConfig}) or from
 * already parsed JSON ({@link parseHostConfig}). Both return a normalized
 * {@link HostConfig} or throw one {@link ConfigError} listing every problem as
 * `file: field.path: rule, got value`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHostConfig } from "./load.ts";
 * const config = parseHostConfig({
 *   name: "tiny",
 *   regions: [{ name: "ram0", size: "64MiB" }],
 *   devices: [{ type: "iommufd", name: "gpu0" }],
 *   workload: { name: "boot", seed: 1 },
 * }, "inline.json");
 * assert.equal(config.regions[0].size, 64 * 2 ** 20);
 * ```
 *
 * @module
 */

import { ConfigError, type ConfigIssue, formatPath } from "./errors.ts";
import type { HostConfig } from "./schema.ts";
import type { TraceMemoryMap } from "../trace/memory_map.ts";
import { checkHostConfig } from "./validate.ts";
import { type DuplicateKey, duplicateKeys, jsonErrorOffset, positionOf } from "./_json_position.ts";
import { displayPath, escapeControls } from "../../util/text.ts";
import { readProblem } from "../../util/_file_problem.ts";

/**
 * Validates and normalizes a host configuration that is already parsed JSON.
 *
 * Pure: it touches no file. Relative trace paths are resolved against the
 * directory of `file`.
 *
 * @param json the parsed JSON document
 * @param file the file it came from, used in messages and to resolve paths
 * @returns the normalized configuration (sizes in bytes, defaults filled)
 * @throws {ConfigError} listing every problem found
 */
export function parseHostConfig(json: unknown, file: string): HostConfig {
  const { config, issues } = checkHostConfig(json, file);
  if (config === undefined || issues.length > 0) throw new ConfigError(file, issues);
  return config;
}

/**
 * Reads, validates and normalizes the host configuration in `path`, and checks
 * that a trace workload's file exists.
 *
 * @param path the configuration file (JSON)
 * @returns the normalized configuration
 * @throws {ConfigError} when the file is missing or unreadable, is not valid
 *   JSON (the message gives the line and column), or breaks any rule
 */
export async function loadHostConfig(path: string): Promise<HostConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(path, [{ path: "", message: configReadProblem(error) }]);
  }
  // A byte-order mark (editors on Windows write one) is not part of the JSON.
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, [{ path: "", message: jsonProblem(text, error) }]);
  }
  // JSON.parse keeps the last of a key given twice: the file would run as other than it reads.
  const duplicates = duplicateKeys(text);
  if (duplicates.length > 0) {
    throw new ConfigError(
      path,
      duplicates.map((d) => ({ path: formatPath(d.path), message: duplicateMessage(text, d) })),
    );
  }
  const config = parseHostConfig(json, path);
  if (config.workload.kind === "trace") {
    const trace = config.workload.trace;
    try {
      const info = await Deno.stat(trace);
      if (!info.isFile) {
        throw new ConfigError(path, [{
          path: "workload.trace",
          message: `must be a file, got ${displayPath(trace)}`,
        }]);
      }
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(path, [{
        path: "workload.trace",
        message:
          `${readProblem(error)}: ${displayPath(trace)} (relative paths are relative to the ` +
          `configuration file)`,
      }]);
    }
  }
  return config;
}

/** Why the configuration file could not be read, in a few words (not Deno's raw text). */
function configReadProblem(error: unknown): string {
  if (error instanceof Deno.errors.IsADirectory) {
    return "is a directory; give a host configuration file";
  }
  return readProblem(error);
}

/**
 * "invalid JSON at line L, column C: reason" from a JSON.parse error. The
 * position comes from our own scanner because V8 reports an offset for most
 * syntax errors but not for all of them.
 */
function jsonProblem(text: string, error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  // V8 quotes the text (`"..." is not valid JSON`, cut as `"..."... ` when long): the position
  // says where instead. What is left may still hold the offending character itself.
  const reason = escapeControls(
    raw
      .replace(/\s*in JSON at position \d+.*$/s, "")
      .replace(/, ".*"(?:\.\.\.)? is not valid JSON$/s, ""),
  );
  const offset = jsonErrorOffset(text);
  if (offset === undefined) return `invalid JSON: ${reason}`;
  const { line, column } = positionOf(text, offset);
  return `invalid JSON at line ${line}, column ${column}: ${reason}`;
}

/** "duplicate key at line L (also at line F)", with columns when both are on one line. */
function duplicateMessage(text: string, d: DuplicateKey): string {
  const at = positionOf(text, d.offset), first = positionOf(text, d.first);
  return at.line === first.line
    ? `duplicate key at line ${at.line}, column ${at.column} (also at column ${first.column})`
    : `duplicate key at line ${at.line} (also at line ${first.line})`;
}

/**
 * The configuration `config` (whose regions come from the trace) with the
 * regions `map` found in the trace `trace`, validated again as a whole: a
 * problem with a region names its memslot and the trace line that set it.
 *
 * @throws {ConfigError} when the regions or the devices that follow them
 *   break a rule
 */
export function withTraceRegions(
  config: HostConfig,
  map: TraceMemoryMap,
  trace: string,
): HostConfig {
  if (config.regionsFrom !== "trace" || config.document === undefined) return config;
  const regions = map.regions.map((r) => ({ name: r.name, size: r.size, base: r.base }));
  try {
    return {
      ...parseHostConfig({ ...config.document, regions }, config.source),
      regionsFrom: "trace",
    };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const issues = e.issues.map((issue): ConfigIssue => {
      const m = /^regions\[(\d+)\](.*)$/.exec(issue.path);
      if (!m) return issue;
      const r = map.regions[Number(m[1])];
      return {
        path: `regions[${m[1]}]${m[2]}`,
        message: `${issue.message} (memslot ${r.slot} from ${displayPath(trace)} line ${r.line})`,
      };
    });
    throw new ConfigError(e.file, issues);
  }
}
