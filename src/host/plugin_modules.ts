/**
 * Plugin modules: plugins of a user's own, named by a configuration
 * (`"plugins": [{ "module": "./my_plugin.ts", "options": { ... } }]`, the
 * path relative to the configuration file) or on the command line
 * (`--plugin FILE`), and run like the built-in ones, with no runner to write.
 *
 * **The module contract.** A plugin module is a TypeScript or JavaScript
 * module whose default export is a factory:
 *
 * ```ts
 * import { definePlugin, type Plugin } from "@cvm/memstate";
 * import type { PluginModuleContext } from "@cvm/memstate/host";
 *
 * export default function create(
 *   options: { name?: string },
 *   context: PluginModuleContext,
 * ): Plugin {
 *   const pages = context.regions.reduce((n, r) => n + r.size / r.pageSize, 0);
 *   console.log(`${context.module}: ${pages} pages under ${context.vmm}`);
 *   return definePlugin({ name: options.name ?? "mine", kind: "mine", populate() {}, discard() {} });
 * }
 * ```
 *
 * - it is called once per run with the entry's `options` (`{}` when none
 *   are given, and always for `--plugin`) and a {@link PluginModuleContext}
 *   describing the host, and returns a {@link Plugin} (or a promise of one);
 * - the plugin is attached to every region the entry names (`"region"`: a
 *   name or a list; default every region), after the built-in plugins and
 *   devices, so its listener replays what is already populated; it is
 *   reported with the others (its `stats()`) and its `verify`, if it has one,
 *   is one of the invariants checked after the run;
 * - a module that cannot be loaded, a default export that is not a function,
 *   a factory that throws or returns something that is not a plugin, a plugin
 *   whose methods are `async`, and a plugin that refuses to attach, are
 *   refused before the first event, in one line naming the module and what
 *   is wrong;
 * - every method and hook is called synchronously and never awaited: a
 *   listener call that returns a promise refuses the change, as a throw does;
 * - a `verify` or `stats` that throws after the run is reported as an
 *   invariant violation naming the plugin (exit status 1), with the rest of
 *   the report.
 *
 * `examples/custom_listener.ts` is such a module, and also runs on its own.
 *
 * @module
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Plugin } from "../plugins/plugin.ts";
import type { KernelSetting } from "../settings/kernel.ts";
import type { VmmPolicy } from "../settings/vmm.ts";
import type { HostConfig, PluginModuleConfig } from "./config/schema.ts";
import { notSynchronous } from "../util/_sync.ts";
import { displayPath, errorLine, quoted } from "../util/text.ts";

/** What a plugin module's factory is told about the host. */
export interface PluginModuleContext {
  /** The module as the configuration or `--plugin` named it, resolved. */
  module: string;
  /** The regions the plugin will follow, with their geometry. */
  regions: readonly { name: string; base: number; size: number; pageSize: number }[];
  /** The VMM policy of the run. */
  vmm: VmmPolicy;
  /** The kernel of the run. */
  kernel: KernelSetting;
}

/** A plugin module's default export. */
export type PluginFactory = (
  options: Record<string, unknown>,
  context: PluginModuleContext,
) => Plugin | Promise<Plugin>;

/** A plugin made from a module, with the regions it follows. */
export interface LoadedPlugin {
  /** The plugin the factory returned. */
  plugin: Plugin;
  /** The regions it follows. */
  regions: string[];
  /** Where it came from, for messages: `plugins[0] (./my_plugin.ts)` or `--plugin FILE`. */
  source: string;
}

/** A plugin module that cannot be used; the message is one line naming it and why. */
export class PluginModuleError extends Error {
  /** The module. */
  readonly module: string;

  /** Builds the error for `module`. */
  constructor(module: string, message: string) {
    super(message);
    this.name = "PluginModuleError";
    this.module = module;
  }
}

/**
 * Loads every plugin module of `config` and calls its factory; see the module
 * documentation. `sources` names each entry for messages (default
 * `plugins[i] (module)`).
 */
export async function loadPluginModules(
  config: HostConfig,
  entries: readonly PluginModuleConfig[] = config.plugins,
  sources?: readonly string[],
): Promise<LoadedPlugin[]> {
  const out: LoadedPlugin[] = [];
  for (const [i, entry] of entries.entries()) {
    const source = sources?.[i] ?? `plugins[${i}] (${displayPath(entry.module)})`;
    const fail = (why: string): never => {
      throw new PluginModuleError(entry.module, `${source}: ${why}`);
    };
    let module: Record<string, unknown>;
    try {
      const url = /^[a-z][a-z0-9+.-]*:/i.test(entry.module) && !entry.module.startsWith("/")
        ? entry.module
        : pathToFileURL(resolve(entry.module)).href;
      module = await import(url);
    } catch (e) {
      fail(`cannot load the module: ${errorLine(e)}`);
    }
    const factory = module!.default;
    if (typeof factory !== "function") {
      fail(
        `the module's default export must be a function (options, context) => Plugin, got ` +
          `${factory === undefined ? "no default export" : typeof factory}`,
      );
    }
    const regions = entry.regions.map((name) => {
      const r = config.regions.find((r) => r.name === name);
      return r ? { name, base: r.base, size: r.size, pageSize: r.pageSize } : fail(
        `unknown region ${quoted(name)}`,
      );
    });
    let plugin: unknown;
    try {
      plugin = await (factory as PluginFactory)(structuredClone(entry.options), {
        module: entry.module,
        regions,
        vmm: config.vmm,
        kernel: config.kernel,
      });
    } catch (e) {
      fail(`the factory threw: ${errorLine(e)}`);
    }
    const p = (plugin ?? {}) as Record<string, unknown>;
    const missing = [
      ...(typeof p.name === "string" && p.name !== "" ? [] : ["name"]),
      ...(typeof p.kind === "string" ? [] : ["kind"]),
      ...["attach", "detach", "stats"].filter((k) => typeof p[k] !== "function"),
    ];
    if (missing.length > 0) {
      fail(`the factory must return a Plugin; it has no ${missing.join(", ")}`);
    }
    const async = ["attach", "detach", "stats", "verify"].flatMap((k) => {
      const how = notSynchronous(p[k]);
      return how ? [`${k} is ${how}`] : [];
    });
    if (async.length > 0) {
      fail(
        `plugin ${p.name}: ${async.join(", ")}; a plugin's methods must be synchronous ` +
          `(memstate does not await them)`,
      );
    }
    out.push({ plugin: p as unknown as Plugin, regions: entry.regions, source });
  }
  return out;
}
