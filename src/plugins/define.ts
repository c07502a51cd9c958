/**
 * Writing a plugin with {@link definePlugin}: give its name, kind, priority
 * and view, and what it does when part of a region becomes populated or is
 * discarded; the helper does the rest, in the spirit of hono's
 * `createMiddleware` (the plugin is its own logic and nothing else):
 *
 * - **registration**: one listener per attached region (or range of it), with
 *   the plugin's priority, view and granularity; attaching replays `populate`
 *   for what is already populated, detaching discards it (the bus does both);
 *   a region attached twice, or detached when it is not attached, is refused;
 *   a refused replay under QEMU 11.1 leaves the plugin attached, as QEMU does;
 * - **per-region state**: `setup` runs when a region is attached and its
 *   result is handed to every call for that region, `teardown` after it is
 *   detached;
 * - **standard stats**: `calls.populate` / `calls.discard`, `failures` (calls
 *   that threw), and the populated extents the plugin follows as `mappings`
 *   (live and peak) and `mappedBytes`, kept exact in a small index per region
 *   (set `standardStats: false` to count your own hardware calls instead with
 *   `ctx.counters`);
 * - **verify**: your `verify` per region, if you have one.
 *
 * Hooks are synchronous: `definePlugin` refuses an `async` one (a
 * `TypeError` naming the plugin and the hook), and a hook that returns a
 * promise anyway refuses that call, as a throw would.
 *
 * @example A plugin that logs what a device may reach, and refuses one page
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConversionError, definePlugin, DMA_VIEW, Region } from "@cvm/memstate";
 *
 * const logged: string[] = [];
 * const guard = definePlugin({
 *   name: "guard",
 *   kind: "example",
 *   priority: 20, // after KVM (0) and the IOMMUs (10) on populate, before them on discard
 *   view: DMA_VIEW,
 *   populate(s) {
 *     if (s.offset <= 0x5000 && 0x5000 < s.offset + s.size) throw new Error("page 5 is secret");
 *     logged.push(`reach ${s.offset}+${s.size}`);
 *   },
 *   discard(s) {
 *     logged.push(`drop ${s.offset}+${s.size}`);
 *   },
 * });
 * const region = new Region({ name: "ram", size: 2 ** 20 });
 * guard.attach(region);
 * region.convert(0, 0x4000, "shared");
 * assert.throws(() => region.convert(0x4000, 0x2000, "shared"), ConversionError);
 * assert.deepEqual(guard.stats().calls, { populate: 2 }); // the second one refused
 * assert.equal(guard.stats().failures, 1);
 * assert.equal(guard.stats().mappings, 1);
 * assert.equal(guard.stats().mappedBytes, 0x4000);
 * ```
 *
 * @module
 */

import type { Listener, Range, Section } from "../bus/listener.ts";
import { listenerStayedRegistered, type Region } from "../bus/region.ts";
import { DMA_VIEW, type View } from "../bus/view.ts";
import { SortedMap } from "../util/sorted_map.ts";
import { refuseAsync, refusePromise } from "../util/_sync.ts";
import {
  checkPluginName,
  type Plugin,
  PluginCounters,
  type PluginStats,
  resolveRange,
} from "./plugin.ts";

/** What every call of a defined plugin is given besides its section. */
export interface PluginContext {
  /** The plugin's name. */
  readonly name: string;
  /**
   * The plugin's counters: `counters.call("map", () => ...)` counts a
   * hardware call and its failure; `counters.mapped(n, bytes)` counts
   * mappings when `standardStats` is false.
   */
  readonly counters: PluginCounters;
}

/**
 * What a plugin is: its identity, its listener's settings and its logic. `S`: per-region state.
 *
 * Every hook is called synchronously and nothing it returns is awaited: an
 * `async` hook is refused by {@link definePlugin}, and a promise a hook
 * returns is a refusal of that call (a thrown `TypeError`).
 */
export interface PluginSpec<S = undefined> {
  /** A unique name, e.g. `"firewall0"`. */
  name: string;
  /** The plugin's kind, e.g. `"dma-firewall"`. */
  kind: string;
  /**
   * Listener priority: populates go in ascending, discards in descending
   * order (KVM is 0, the IOMMUs 10). Default 20: after every built-in plugin
   * on populate, before them on discard.
   */
  priority?: number;
  /** What "populated" means to the plugin (default {@link DMA_VIEW}: shared and plugged). */
  view?: View;
  /**
   * Bytes every notification is aligned to (default: the region's
   * granularity); a function is asked per region, after `setup`.
   */
  granularity?: number | ((region: Region, state: S) => number | undefined);
  /**
   * True when the plugin tolerates a discard over parts it never saw
   * populated. Under memstate's policy a change then discards once, over the
   * span of its discarded runs (`Section.uniform` false when it has gaps),
   * and a rollback populates exactly the runs discarded (see
   * `Listener.acceptsDoubleDiscard`).
   */
  acceptsDoubleDiscard?: boolean;
  /**
   * Count `populate` / `discard` calls and follow the populated extents as
   * `mappings` (default true). False: count your own calls with `ctx.counters`.
   */
  standardStats?: boolean;
  /** Called when a region is attached, before the replay; throw to refuse it. Returns its state. */
  setup?(region: Region, range: Range, ctx: PluginContext): S;
  /**
   * Called before `section` becomes populated. Throw to refuse the change:
   * undo your own work for this call first, the bus rolls back the others.
   */
  populate(section: Section, state: S, ctx: PluginContext): void;
  /** Called when `section` stops being populated. Throw to refuse (the change rolls back). */
  discard(section: Section, state: S, ctx: PluginContext): void;
  /** Called after a region was detached (its populated parts already discarded). */
  teardown?(region: Region, state: S, ctx: PluginContext): void;
  /** One line per disagreement between what the plugin holds and `region`'s store. */
  verify?(region: Region, state: S, range: Range, ctx: PluginContext): string[];
  /** Statistics of the plugin's own, merged over the standard ones. */
  stats?(ctx: PluginContext): Partial<PluginStats>;
}

/** A plugin made by {@link definePlugin}. */
export interface DefinedPlugin<S = undefined> extends Plugin {
  /** The state `setup` returned for `region`, while it is attached. */
  state(region: Region): S | undefined;
  /** The regions it follows now, with their ranges. */
  attached(): [Region, Range][];
  /** One line per disagreement, from the spec's `verify` (none without one). */
  verify(region: Region): string[];
}

/** Makes a {@link Plugin} from `spec`; see the module documentation. */
export function definePlugin<S = undefined>(spec: PluginSpec<S>): DefinedPlugin<S> {
  return new Defined(spec);
}

/** The hooks of a spec that may be functions; memstate calls each synchronously. */
const SYNC_HOOKS = [
  "populate",
  "discard",
  "setup",
  "teardown",
  "verify",
  "stats",
  "granularity",
] as const;

interface Attachment<S> {
  listener: Listener;
  range: Range;
  state: S;
  extents?: Extents;
}

class Defined<S> implements DefinedPlugin<S> {
  readonly name: string;
  readonly kind: string;
  #spec: PluginSpec<S>;
  #ctx: PluginContext;
  #counters = new PluginCounters();
  #attached = new Map<Region, Attachment<S>>();
  #standard: boolean;
  /** Populated extents over every region (the standard `mappings`). */
  #extents = { count: 0, peak: 0, bytes: 0 };

  constructor(spec: PluginSpec<S>) {
    if (typeof spec !== "object" || spec === null) {
      throw new TypeError(`definePlugin: spec must be an object, got ${String(spec)}`);
    }
    this.name = checkPluginName(spec.name, "definePlugin");
    if (typeof spec.kind !== "string" || spec.kind === "") {
      throw new TypeError(
        `definePlugin ${this.name}: kind must be a non-empty string, got ${String(spec.kind)}`,
      );
    }
    for (const hook of ["populate", "discard"] as const) {
      if (typeof spec[hook] !== "function") {
        throw new TypeError(`definePlugin ${this.name}: ${hook} must be a function`);
      }
    }
    // Every hook is called synchronously: an async one would not have done its work on return.
    for (const hook of SYNC_HOOKS) {
      refuseAsync(
        spec[hook],
        `definePlugin ${this.name}: ${hook}`,
        " (memstate neither awaits nor iterates what it returns: do the work, or throw to " +
          "refuse, before returning)",
      );
    }
    this.kind = spec.kind;
    this.#spec = spec;
    this.#standard = spec.standardStats ?? true;
    this.#ctx = { name: this.name, counters: this.#counters };
  }

  attach(region: Region, range?: Range): void {
    if (this.#attached.has(region)) {
      throw new RangeError(`${this.kind} ${this.name}: already attached to region ${region.name}`);
    }
    const r = resolveRange(region, range, `${this.kind} ${this.name}`);
    const state = this.#spec.setup ? this.#spec.setup(region, r, this.#ctx) : (undefined as S);
    refusePromise(state, "setup");
    const entry: Attachment<S> = {
      listener: undefined as unknown as Listener,
      range: r,
      state,
      ...(this.#standard ? { extents: new Extents(this.#extents) } : {}),
    };
    entry.listener = this.#listener(region, entry);
    try {
      region.register(entry.listener, r);
    } catch (e) {
      // QEMU keeps a listener whose replay failed (11.1; 10.1's failed region too): so do we.
      if (listenerStayedRegistered(e, entry.listener.name)) this.#attached.set(region, entry);
      else this.#teardown(region, state);
      throw e;
    }
    this.#attached.set(region, entry);
  }

  detach(region: Region): void {
    const entry = this.#attached.get(region);
    if (!entry) {
      throw new RangeError(`${this.kind} ${this.name}: not attached to region ${region.name}`);
    }
    this.#attached.delete(region);
    try {
      region.unregister(entry.listener);
    } finally {
      this.#teardown(region, entry.state);
    }
  }

  #teardown(region: Region, state: S): void {
    refusePromise(this.#spec.teardown?.(region, state, this.#ctx), "teardown");
  }

  stats(): PluginStats {
    const stats = this.#counters.snapshot(this.name, this.kind);
    if (this.#standard) {
      stats.mappings = this.#extents.count;
      stats.peakMappings = this.#extents.peak;
      stats.mappedBytes = this.#extents.bytes;
    }
    const own = this.#spec.stats?.(this.#ctx);
    refusePromise(own, "stats");
    return { ...stats, ...own };
  }

  verify(region: Region): string[] {
    const entry = this.#attached.get(region);
    if (!entry || !this.#spec.verify) return [];
    const lines = this.#spec.verify(region, entry.state, entry.range, this.#ctx);
    refusePromise(lines, "verify");
    return lines;
  }

  state(region: Region): S | undefined {
    return this.#attached.get(region)?.state;
  }

  attached(): [Region, Range][] {
    return [...this.#attached].map(([region, e]) => [region, e.range]);
  }

  #listener(region: Region, entry: Attachment<S>): Listener {
    const spec = this.#spec;
    const ctx = this.#ctx;
    const counters = this.#counters;
    const granularity = typeof spec.granularity === "function"
      ? spec.granularity(region, entry.state)
      : spec.granularity;
    const extents = entry.extents;
    // A hook that returns a promise refuses the call (counted as a failure), as the bus would.
    const call = (op: "populate" | "discard", s: Section) => {
      if (!extents) return refusePromise(spec[op](s, entry.state, ctx), op);
      counters.call(op, () => refusePromise(spec[op](s, entry.state, ctx), op));
      if (op === "populate") extents.add(s.offset, s.offset + s.size);
      else extents.remove(s.offset, s.offset + s.size);
    };
    return {
      name: this.name,
      priority: spec.priority ?? 20,
      view: spec.view ?? DMA_VIEW,
      ...(granularity !== undefined ? { granularity } : {}),
      ...(spec.acceptsDoubleDiscard ? { acceptsDoubleDiscard: true } : {}),
      populate: (s) => call("populate", s),
      discard: (s) => call("discard", s),
    };
  }
}

/**
 * The populated extents of one region as the plugin was told of them:
 * maximal runs in a sorted index, so `mappings` counts extents exactly
 * whatever sections the bus sends (a discard may cover several populates, or
 * part of one, or parts never populated).
 */
class Extents {
  #runs = new SortedMap<{ start: number; end: number }>();
  #totals: { count: number; peak: number; bytes: number };

  constructor(totals: { count: number; peak: number; bytes: number }) {
    this.#totals = totals;
  }

  add(start: number, end: number): void {
    const t = this.#totals;
    this.remove(start, end); // a populate over parts already held (a replay) counts once
    t.bytes += end - start;
    const left = this.#runs.below(start);
    if (left && left.end === start) {
      this.#runs.delete(left.start);
      start = left.start;
      t.count--;
    }
    const right = this.#runs.get(end);
    if (right) {
      this.#runs.delete(right.start);
      end = right.end;
      t.count--;
    }
    this.#runs.set(start, { start, end });
    t.count++;
    if (t.count > t.peak) t.peak = t.count;
  }

  remove(start: number, end: number): void {
    const t = this.#totals;
    const hit: { start: number; end: number }[] = [];
    const first = this.#runs.atOrBelow(start);
    if (first && first.end > start) hit.push(first);
    for (const r of this.#runs.valuesInRange(start, end)) if (r !== first) hit.push(r);
    for (const r of hit) {
      this.#runs.delete(r.start);
      t.count--;
      t.bytes -= Math.min(r.end, end) - Math.max(r.start, start);
      if (r.start < start) {
        this.#runs.set(r.start, { start: r.start, end: start });
        t.count++;
      }
      if (r.end > end) {
        this.#runs.set(end, { start: end, end: r.end });
        t.count++;
      }
    }
    if (t.count > t.peak) t.peak = t.count; // a discard inside an extent splits it in two
  }
}
