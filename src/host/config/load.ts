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

import { ConfigError, type ConfigIssue } from "./errors.ts";
import type { HostConfig } from "./schema.ts";
import type { TraceMemoryMap } from "../trace/memory_map.ts";
import { checkHostConfig } from "./validate.ts";
import { jsonErrorOffset, positionOf } from "./_json_position.ts";

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
    const reason = error instanceof Deno.errors.NotFound
      ? "file not found"
      : `cannot read the file: ${error instanceof Error ? error.message : String(error)}`;
    throw new ConfigError(path, [{ path: "", message: reason }]);
  }
  // A byte-order mark (editors on Windows write one) is not part of the JSON.
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, [{ path: "", message: jsonProblem(text, error) }]);
  }
  const config = parseHostConfig(json, path);
  if (config.workload.kind === "trace") {
    const trace = config.workload.trace;
    try {
      const info = await Deno.stat(trace);
      if (!info.isFile) {
        throw new ConfigError(path, [{
          path: "workload.trace",
          message: `must be a file, got ${JSON.stringify(trace)}`,
        }]);
      }
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      const reason = error instanceof Deno.errors.NotFound ? "file not found" : String(error);
      throw new ConfigError(path, [{
        path: "workload.trace",
        message: `${reason}: ${JSON.stringify(trace)} (relative paths are relative to the ` +
          `configuration file)`,
      }]);
    }
  }
  return config;
}

/**
 * "invalid JSON at line L, column C: reason" from a JSON.parse error. The
 * position comes from our own scanner because V8 reports an offset for most
 * syntax errors but not for all of them.
 */
function jsonProblem(text: string, error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  const reason = raw
    .replace(/\s*in JSON at position \d+.*$/s, "")
    .replace(/, ".*" is not valid JSON$/s, "");
  const offset = jsonErrorOffset(text);
  if (offset === undefined) return `invalid JSON: ${reason}`;
  const { line, column } = positionOf(text, offset);
  return `invalid JSON at line ${line}, column ${column}: ${reason}`;
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
        message: `${issue.message} (memslot ${r.slot} from ${trace} line ${r.line})`,
      };
    });
    throw new ConfigError(e.file, issues);
  }
}
