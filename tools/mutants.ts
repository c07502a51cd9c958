/**
 * The planted bugs of the mutation check (tools/mutate.ts): each replaces one
 * exact piece of source text, found exactly once in its file. They cover the
 * store (range-tree edges where a span boundary meets the end of the store,
 * missed merges, off-by-one bounds, the memory heuristics), the bus (rule
 * order, rollback, views, QEMU's state change engine, registration), the
 * simulated kernels (limit checks, errno order), the plugins (virtio-mem's rule
 * order, the type1 budget, iommufd's cut path, KVM's coalescing and restore),
 * the trace reader, the invariant checker, hooks that must be synchronous
 * (an async hook refused, a returned promise a refusal) and the summary of the
 * benchmark report's runs.
 *
 * A mutant that the suite cannot kill because no caller can tell the
 * difference is marked `equivalent`, with the reason.
 *
 * @module
 */

/** One planted bug. */
export interface Mutant {
  /** Short stable name, for `--only`. */
  id: string;
  /** Path from the repository root. */
  file: string;
  /** Exact text replaced; must occur once in `file`. */
  search: string;
  /** What replaces it. */
  replace: string;
  /** The bug, in one line. */
  what: string;
  /** Set when the mutant cannot change behaviour: why (it is then not counted). */
  equivalent?: string;
  /** Test files (prefixes) to run before the whole suite, instead of the defaults for `file`. */
  tests?: readonly string[];
}

const RTS = "src/store/range_tree_store.ts";
const SF = "src/host/state_file.ts";

/** Every planted bug, in the order they run. */
export const MUTANTS: readonly Mutant[] = [
  // ---- store: range tree -------------------------------------------------------------------
  {
    id: "store-recolor-right-edge",
    file: RTS,
    search: "    if (!atEnd) right = value;\n    else if (e < this.length) {",
    replace: "    if (!atEnd) right = value;\n    else if (e < this.length - 1) {",
    what: "a run edit ending one page before the store's end ignores its right neighbour",
  },
  {
    id: "store-recolor-missed-merge-right",
    file: RTS,
    search: "const mergeRight = rightRun && right === state;",
    replace: "const mergeRight = false;",
    what: "a recoloured run is never merged with an equal run after it",
  },
  {
    id: "store-recolor-missed-merge-left",
    file: RTS,
    search: "const mergeLeft = leftRun && left === state;",
    replace: "const mergeLeft = leftRun && left === state && s > 1;",
    what: "a run recoloured at page 1 is not merged with the run at page 0",
  },
  {
    id: "store-edit-span-end",
    file: RTS,
    search:
      "const se = sc + this.#span < this.length ? sc + this.#span : this.length;\n        const stop = se < end ? se : end;",
    replace: "const se = sc + this.#span;\n        const stop = se < end ? se : end;",
    what: "the last span of a store whose length is not a span multiple runs past the store's end",
  },
  {
    id: "store-open-container-span-end",
    file: RTS,
    search:
      "const se = sc + this.#span < this.length ? sc + this.#span : this.length;\n      // An end inside",
    replace: "const se = sc + this.#span;\n      // An end inside",
    what: "a run container opened in a store's partial last span reaches past the store's end",
  },
  {
    id: "store-run-adds-at-stop",
    file: RTS,
    search: "+ (stop < next && stop < se ? 1 : 0);",
    replace: "+ 0;",
    what: "an edit ending inside a run is not counted as adding a boundary to its span",
  },
  {
    id: "store-run-stale-cursor",
    file: RTS,
    search: "        if (inside) index.seek(pos); // countInside moved the cursor\n",
    replace: "",
    what: "after counting a span's boundaries the run edit works from wherever the cursor was left",
  },
  {
    id: "store-open-container-left-edge",
    file: RTS,
    search:
      "      const left = this.#pageState(sc - 1);\n      changes += (left !== state ? 1 : 0) - (left !== value ? 1 : 0);",
    replace:
      "      const left = this.#pageState(sc - 1);\n      changes += left !== state ? 1 : 0;",
    what: "runCount: a container opened by an edit from its span's start counts the change " +
      "with the page before even when there was one already",
  },
  {
    id: "store-open-container-right-edge",
    file: RTS,
    search:
      "      changes += (right !== state ? 1 : 0) - (right !== value ? 1 : 0);\n    }\n    this.#changes += changes;",
    replace: "      changes += right !== state ? 1 : 0;\n    }\n    this.#changes += changes;",
    what: "runCount: a container opened by an edit to the end of its span counts the change " +
      "with the next page even when there was one before",
  },
  {
    id: "store-open-container-no-end-key",
    file: RTS,
    search: "      if (next > se) index.insertAfter(se, value);",
    replace: "      if (next > se + 1) index.insertAfter(se, value);",
    what: "a run container opened at a run's start, the run ending one page past the span, " +
      "forgets the span's end",
  },
  {
    id: "store-open-container-mid-run",
    file: RTS,
    search: "} else if (next > se) index.insertTwoAfter(sc, ref, se, value);",
    replace: "} else if (next > se + 1) index.insertTwoAfter(sc, ref, se, value);",
    what:
      "a run container opened inside a run that ends one page past the span forgets the span's end",
  },
  {
    id: "store-container-merge-left",
    file: "src/store/_run_containers.ts",
    search: "const leftSame = i > 0 && heap[2 * (base + i - 1) + 1] === state;",
    replace: "const leftSame = i > 1 && heap[2 * (base + i - 1) + 1] === state;",
    what: "an edit in a run container's second pair never merges with the first",
  },
  {
    id: "store-container-edge-count",
    file: RTS,
    search: "      total += (right !== last ? 1 : 0) - (right !== lastBefore ? 1 : 0);",
    replace: "      total += right !== last ? 1 : 0;",
    what: "runCount: a container edit at a span's end counts the change with the next span twice",
  },
  {
    id: "store-container-across-merge-next",
    file: "src/store/_run_containers.ts",
    search: "const dropNext = j < n && heap[2 * (base + j) + 1] === last ? 1 : 0;",
    replace: "const dropNext = 0;",
    what: "an edit over several pairs of a container leaves two neighbouring pairs in one state",
  },
  {
    id: "store-container-find",
    file: "src/store/_run_containers.ts",
    search: "      if (heap[2 * (base + mid)] <= off) lo = mid + 1;",
    replace: "      if (heap[2 * (base + mid)] < off) lo = mid + 1;",
    what: "finding the pair of an offset misses a pair that starts exactly there",
  },
  {
    id: "store-container-to-runs",
    file: RTS,
    search: "    if (after - 1 <= this.#containerRunsAt) this.#containerToRuns(sc, se, id);",
    replace: "    if (after - 1 < this.#containerRunsAt) this.#containerToRuns(sc, se, id);",
    what: "a run container left uniform stays a container",
  },
  {
    id: "store-containers-no-shrink",
    file: "src/store/_run_containers.ts",
    search: "    if (room <= FIRST_ROOM || count * 8 > room) return;",
    replace: "    return;",
    what: "memory: a run container that empties out keeps the room it once needed",
  },
  {
    id: "store-containers-drop-small-heap",
    file: "src/store/_run_containers.ts",
    search:
      "      reopen && this.heap.length <= 2 * KEEP_PAIRS && this.count.length <= KEEP_CONTAINERS",
    replace: "      reopen && this.heap.length < 0",
    what: "performance: a pool's last container drops even a small heap (swiotlb-churn regrows it)",
  },
  {
    id: "store-containers-keep-big-heap",
    file: "src/store/_run_containers.ts",
    search:
      "      reopen && this.heap.length <= 2 * KEEP_PAIRS && this.count.length <= KEEP_CONTAINERS",
    replace: "      reopen",
    what: "memory: a store whose containers all went back to runs keeps their whole heap",
  },
  {
    id: "store-containers-keep-without-reopen",
    file: "src/store/_run_containers.ts",
    search:
      "      reopen && this.heap.length <= 2 * KEEP_PAIRS && this.count.length <= KEEP_CONTAINERS",
    replace: "      this.heap.length <= 2 * KEEP_PAIRS && this.count.length <= KEEP_CONTAINERS",
    what: "memory: a container that became a chunk map leaves its heap behind",
  },
  {
    id: "store-containers-keep-many-numbers",
    file: "src/store/_run_containers.ts",
    search:
      "      reopen && this.heap.length <= 2 * KEEP_PAIRS && this.count.length <= KEEP_CONTAINERS",
    replace: "      reopen && this.heap.length <= 2 * KEEP_PAIRS",
    what: "memory: a store whose many containers all went keeps arrays for every one of them",
  },
  {
    id: "store-containers-keep-grown-heap",
    file: "src/store/_run_containers.ts",
    search: "export const KEEP_PAIRS = 128;",
    replace: "export const KEEP_PAIRS = 64;",
    what: "performance: a pool that empties after its one container grew drops the heap it will " +
      "need again at its next buffer",
  },
  {
    id: "store-containers-keep-bound-strict",
    file: "src/store/_run_containers.ts",
    search:
      "      reopen && this.heap.length <= 2 * KEEP_PAIRS && this.count.length <= KEEP_CONTAINERS",
    replace:
      "      reopen && this.heap.length < 2 * KEEP_PAIRS && this.count.length < KEEP_CONTAINERS",
    what: "performance: a heap of exactly KEEP_PAIRS pairs, or arrays for exactly " +
      "KEEP_CONTAINERS containers, are dropped at the last release and allocated again",
  },
  {
    id: "store-containers-heap-by-half",
    file: "src/store/_run_containers.ts",
    search: "const grown = new Int32Array(4 * (this.#used + room));",
    replace: "const grown = new Int32Array(2 * Math.ceil((this.#used + room) * 1.5));",
    what: "performance: the containers' heap grows by half, so a fresh store's build allocates " +
      "more buffers",
  },
  {
    id: "store-containers-meta-overlap",
    file: "src/store/_run_containers.ts",
    search: "    this.room = ints(this.room, 8, 0);",
    replace: "    this.room = ints(this.room, 4, 0);",
    what: "the containers' rooms are laid over their counts in the buffer the arrays share",
  },
  {
    id: "store-directory-views-overlap",
    file: "src/store/_span_directory.ts",
    search: "new Int32Array(buffer, 8 * capacity, capacity)",
    replace: "new Int32Array(buffer, 4 * capacity, capacity)",
    what: "the span directory's slots are laid over the upper half of its keys",
  },
  {
    id: "store-containers-shrink-at-quarter",
    file: "src/store/_run_containers.ts",
    search: "    if (room <= FIRST_ROOM || count * 8 > room) return;",
    replace: "    if (room <= FIRST_ROOM || count * 4 > room) return;",
    what: "performance: a room just grown fourfold moves back down at the next removal",
  },
  {
    id: "store-containers-grow-twofold",
    file: "src/store/_run_containers.ts",
    search: "    let room = this.room[id] * 4;",
    replace: "    let room = this.room[id] * 2;",
    what:
      "performance: a full run container grows twofold, moving twice as often (boot 64 GiB slower)",
  },
  {
    id: "store-containers-compact",
    file: "src/store/_run_containers.ts",
    search: "      used += this.room[id];\n    }\n    this.heap = heap;",
    replace: "      used += this.count[id];\n    }\n    this.heap = heap;",
    what: "compacting the containers' heap packs rooms by their pairs in use, so rooms overlap",
  },
  {
    id: "store-editmap-whole-chunk-store-end",
    file: RTS,
    search: "          if (ce < length) {\n            const right = c < lastChunk",
    replace: "          if (ce <= length) {\n            const right = c < lastChunk",
    what: "recolouring a whole chunk that ends the store compares it with a page past the end",
  },
  {
    id: "store-editmap-chunk-end-partial",
    file: RTS,
    search: "      const ce = cs + chunk < se ? cs + chunk : se;\n      const x = a > cs ? a : cs;",
    replace: "      const ce = cs + chunk;\n      const x = a > cs ? a : cs;",
    what: "a chunk map's partial last chunk is edited as if it were a full chunk",
  },
  {
    id: "store-editmap-single-page-right-edge",
    file: RTS,
    search: "        if (oa < last) {\n          const right = dense.read(d, oa + 1);",
    replace: "        if (oa < last - 1) {\n          const right = dense.read(d, oa + 1);",
    what: "a one-page flip next to a dense chunk's last page counts the wrong boundary",
  },
  {
    id: "store-toruns-missed-merge-after",
    file: RTS,
    search: "if (se < this.length && index.nextValue() === lastState) index.removeAfter();",
    replace: "if (se < this.length && index.nextValue() === -1) index.removeAfter();",
    what: "a chunk map turning back into runs does not merge its last run with an equal run after",
  },
  {
    id: "store-tocontainer-end-key",
    file: RTS,
    search: "if (se < this.length && !hasEndKey) index.insertAfter(se, last);",
    replace: "if (se < this.length - 1 && !hasEndKey) index.insertAfter(se, last);",
    what: "a span of runs turned into a run container, ending one page before the store's end, " +
      "loses the entry after it",
  },
  {
    id: "store-runs-dense-break",
    file: RTS,
    search: "              if (runEnd < ce) break scan;",
    replace: "              if (runEnd < ce - 1) break scan;",
    what: "a run ending on a dense chunk's second-to-last page does not stop the scan there",
    equivalent:
      "the scan's next step reads the page at runEnd, which differs from the run's state, and stops there: the early break only saves that read",
  },
  {
    id: "store-runs-window-end",
    file: RTS,
    search: "            const ce = cs + chunk < stop ? cs + chunk : stop;",
    replace: "            const ce = cs + chunk;",
    what: "runs() over a window that ends inside a chunk of a map yields a run past the window",
  },
  {
    id: "store-map-cost-factor",
    file: RTS,
    search: "if (mapBytes <= MAP_COST_FACTOR * RUN_ENTRY_BYTES * inside) this.#toMap(sc, se, id);",
    replace: "if (mapBytes <= 64 * RUN_ENTRY_BYTES * inside) this.#toMap(sc, se, id);",
    what:
      "memory heuristic: a span becomes a chunk map even when the map costs far more than its runs",
  },
  {
    id: "store-bytesize-directory",
    file: RTS,
    search: "this.#maps.byteSize() + this.#dense.byteSize() + this.#directory.byteSize() +",
    replace: "this.#maps.byteSize() + this.#dense.byteSize() +",
    what: "memory heuristic: byteSize() leaves out the span directory",
  },
  {
    id: "store-check-range-end",
    file: "src/store/validate.ts",
    search: `  checkInteger("end", end, 0, length);`,
    replace: `  checkInteger("end", end, 0, length + 1);`,
    what: "off-by-one bound: a range may end one page past the store",
  },
  {
    id: "store-dense-changes-first-word",
    file: "src/store/_dense_slab.ts",
    search: "        const carry = w > 0 ? data[at - 1] >>> 31 : (x & 1);",
    replace: "        const carry = w > 0 ? data[at - 1] >>> 31 : 0;",
    what: "a dense chunk counts a change before its first page",
    equivalent:
      "changesIn requires lo >= 1, and bit 0 of the first word, the only one the carry reaches, is masked off for every lo >= 1",
  },
  {
    id: "store-dense-changes-last-boundary",
    file: "src/store/_dense_slab.ts",
    search:
      "      }\n      if (w === first) diff &= ALL << (lo & 31);\n      if (w === last) diff &= ALL >>> (31 - (hi & 31));",
    replace:
      "      }\n      if (w === first) diff &= ALL << (lo & 31);\n      if (w === last) diff &= ALL >>> (32 - (hi & 31));",
    what: "a dense chunk does not count the change at the last boundary it is asked about",
  },
  {
    id: "bitmap-runs-plane-start",
    file: "src/store/bitmap_store.ts",
    search: "for (let b = 0; b < this.#bits && next > pos + 1; b++) {",
    replace: "for (let b = 1; b < this.#bits && next > pos + 1; b++) {",
    what: "the bitmap oracle's runs ignore the lowest state bit",
  },

  // ---- bus ---------------------------------------------------------------------------------
  {
    id: "bus-plan-discard-order",
    file: "src/bus/_plan.ts",
    search: "  for (let i = registrations.length - 1; i >= 0; i--) {\n    calls = addFlips(",
    replace: "  for (let i = 0; i < registrations.length; i++) {\n    calls = addFlips(",
    what: "rule order: discards go in ascending priority (KVM goes private before DMA unmaps)",
  },
  {
    id: "bus-plan-merge-gap",
    file: "src/bus/_plan.ts",
    search: "if (last !== undefined && last.endPage === start) {",
    replace: "if (last !== undefined && last.endPage <= start) {",
    what: "two flips with a gap between them are told as one call over the gap",
  },
  {
    id: "bus-register-same-name",
    file: "src/bus/region.ts",
    search: "if (this.#registrations.some((r) => r.listener.name === name)) {",
    replace: "if (this.#registrations.some((r) => r.listener.name === name + ' ')) {",
    what: "a second listener of one name is registered; results and errors cannot tell them apart",
    tests: ["tests/bus_registration_test.ts"],
  },
  {
    id: "host-detach-keeps-domain",
    file: "src/host/build.ts",
    search: "        if (others.length > 0) return;\n",
    replace: "        if (others.length >= 0) return;\n",
    what: "a detached device keeps reporting the IO page tables its freed domain had",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "host-failed-attach-keeps-domain",
    file: "src/host/build.ts",
    search: "            if (wasEmpty) c.hardware.freeDomain();\n",
    replace: "",
    what: "an attach that fails and lets go leaves its container's page tables counted",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "host-detach-every-configured-region",
    file: "src/host/build.ts",
    search: "        for (const r of [...following]) {\n",
    replace: "        for (const r of [...c.regions]) {\n",
    what: "a device QEMU 11.1 kept after a failed replay cannot detach (it holds fewer regions)",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "hotplug-attach-before-detach",
    file: "src/host/event_runner.ts",
    search: 'for (const op of ["detach", "attach"] as const) {',
    replace: 'for (const op of ["attach", "detach"] as const) {',
    what: "at one event a device arrives before another leaves, so the two overlap",
    tests: ["tests/host_run_test.ts", "tests/host_workloads_test.ts"],
  },
  {
    id: "io-table-domain-keeps-retained",
    file: "src/hw/sim/io_page_table.ts",
    search:
      "  dropRetained(): void {\n    this.#retained = this.#regions.map(() => new RegionSet());",
    replace: "  dropRetained(): void {",
    what: "freeing a domain leaves its retained table pages counted",
    tests: ["tests/hw_io_page_table_test.ts"],
  },
  {
    id: "runner-vmem-empty-no-request",
    file: "src/host/event_runner.ts",
    search: "      } while (at < event.size);",
    replace:
      "      } while (at < event.size);\n      if (event.size === 0) result.requests.ERROR--;",
    what: "an empty virtio-mem event is not counted as the ERROR request it is",
    tests: ["tests/virtio_mem_nb_blocks_test.ts"],
  },
  {
    id: "container-per-device",
    file: "src/host/config/containers.ts",
    search: '(d.type === "type1" ? d.container : d.iommufd) ?? null]);',
    replace: '(d.type === "type1" ? d.container : d.iommufd) ?? (d as { name?: string }).name]);',
    what: "each device without a container field gets a container of its own (QEMU shares one)",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-kinds-mixed",
    file: "src/host/config/containers.ts",
    search:
      '  return JSON.stringify([d.type, (d.type === "type1" ? d.container : d.iommufd) ?? null]);',
    replace: '  return JSON.stringify([(d.type === "type1" ? d.container : d.iommufd) ?? null]);',
    what: "a type1 device and an iommufd device share one container",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-join-remaps",
    file: "src/host/build.ts",
    search: "          if (following.includes(r)) continue;\n",
    replace: "",
    what: "a device joining an attached container replays its mappings again",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-leave-unmaps",
    file: "src/host/build.ts",
    search: "          if (kept.has(r)) continue; // another device still follows it",
    replace: "          // another device still follows it",
    what: "a device leaving a container its other devices still use unmaps their memory",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-regions-first-only",
    file: "src/host/config/containers.ts",
    search: "    for (const r of d.regions) if (!plan.regions.includes(r)) plan.regions.push(r);",
    replace: "",
    what: "a container follows only its first device's regions, not every member's",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-budget-per-device",
    file: "src/host/config/capacity.ts",
    search:
      "    const budget = type1DeviceBudget(config, { ...device, regions: plan.regions }, vmm);",
    replace: "    const budget = type1DeviceBudget(config, device, vmm);",
    what: "the start-up type1 budget counts the first device's regions, not the container's",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-settings-unchecked",
    file: "src/host/config/validate_devices.ts",
    search: "    if (value === theirs) continue;",
    replace: "    if (value === theirs || true) continue;",
    what: "devices sharing a container may give different limits (the first one's silently wins)",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-cut-as-written",
    file: "src/host/config/settings_rules.ts",
    search: '(d.type === "iommufd" ? d.cut : undefined) ?? features.cutMapping;',
    replace: '(d.type === "iommufd" ? d.cut : undefined) ?? false;',
    what: "an absent cut is compared as false even where the kernel's default is true",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-cut-unchecked",
    file: "src/host/config/settings_rules.ts",
    search: "      if (cut(d) === cut(first) || (cut(d) && !features.cutMapping)) continue;",
    replace:
      "      if (cut(d) === cut(first) || (cut(d) && !features.cutMapping) || true) continue;",
    what: "iommufd devices on one object may map two ways (the first one's silently wins)",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-type1-apart-under-qemu",
    file: "src/host/config/settings_rules.ts",
    search: 'if (device.type === "type1" && device.container !== undefined && qemu) {',
    replace: 'if (device.type === "type1" && device.container !== undefined && !qemu) {',
    what: "type1 devices kept apart under a QEMU policy, which has no way to do it",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-swap-ignores-fit",
    file: "src/host/build.ts",
    search: "      return granularity % r.pageSize === 0 && r.size % granularity === 0;",
    replace: "      return true;",
    what: "a swapped device joins a container whose granularity does not divide its regions",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "container-failed-parse-compared",
    file: "src/host/config/validate_devices.ts",
    search:
      "    if (!Object.hasOwn(first.fields, field)) continue; // the first one's did not parse",
    replace: "",
    what: "a limit that failed to parse is also reported as differing from the next device's",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "attach-regions-in-listed-order",
    file: "src/host/build.ts",
    search: "for (const r of [...dev.regions].sort((x, y) => x.base - y.base)) {",
    replace: "for (const r of [...dev.regions]) {",
    what: "a device meets its regions in the order it lists them, not in address order as QEMU",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "attach-stops-at-kept-listener",
    file: "src/host/build.ts",
    search: "              kept ??= e;\n              continue;\n",
    replace: "              kept ??= e;\n              break;\n",
    what: "under QEMU 11.1 a replay refused on one region stops the listener at it",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "container-swap-default-limit",
    file: "src/host/build.ts",
    search:
      "      dmaEntryLimit: (fits ? same?.dmaEntryLimit : undefined) ?? DEFAULT_DMA_ENTRY_LIMIT,",
    replace: "      dmaEntryLimit: DEFAULT_DMA_ENTRY_LIMIT,",
    what: "a device swapped into an existing type1 container brings the default limit with it",
    tests: ["tests/host_containers_test.ts"],
  },
  {
    id: "settings-qemu-dma-region-subset",
    file: "src/host/config/settings_rules.ts",
    search: "qemu && device.regions.length < config.regions.length) {",
    replace: "qemu && device.regions.length < config.regions.length - 1) {",
    what: "under a QEMU policy a DMA device may leave a region out (QEMU's listener follows all)",
    tests: ["tests/host_config_test.ts"],
  },
  {
    id: "settings-qemu-virtio-mem-part",
    file: "src/host/config/settings_rules.ts",
    search: "(device.offset !== 0 || device.size !== region.size)) {",
    replace: "device.offset !== 0) {",
    what: "under a QEMU policy a virtio-mem device may cover part of its region (from offset 0)",
    tests: ["tests/host_config_test.ts"],
  },
  {
    id: "config-device-named-kvm",
    file: "src/host/config/validate_devices.ts",
    search: "if (name === KVM_PLUGIN_NAME) {",
    replace: "if (name === KVM_PLUGIN_NAME + ' ') {",
    what: "a device named like the KVM attributes plugin is taken, and meets an internal error",
    tests: ["tests/host_config_test.ts"],
  },
  {
    id: "bus-plan-double-discard-per-run",
    file: "src/bus/_plan.ts",
    search: "(populated ? reg.coalesce : reg.coalesceDiscards)",
    replace: "reg.coalesce",
    what: "memstate discards once per run to a listener that accepts double discards",
    tests: ["tests/bus_rollback_test.ts", "tests/vmm_policy_test.ts"],
  },
  {
    id: "bus-plan-double-discard-populates",
    file: "src/bus/_plan.ts",
    search: "(populated ? reg.coalesce : reg.coalesceDiscards)",
    replace: "reg.coalesceDiscards",
    what: "a listener that accepts double discards gets populates over spans with gaps too",
    tests: ["tests/bus_rollback_test.ts", "tests/vmm_policy_test.ts", "tests/bus_property_test.ts"],
  },

  {
    id: "bus-rollback-order",
    file: "src/bus/_transaction.ts",
    search: "for (let i = done.length - 1; i >= 0; i--) {",
    replace: "for (let i = 0; i < done.length; i++) {",
    what: "rollback undoes the oldest call first instead of the newest",
  },
  {
    id: "bus-rollback-parts",
    file: "src/bus/_transaction.ts",
    search: "const parts = call.parts ?? [call.startPage, call.endPage];",
    replace: "const parts = [call.startPage, call.endPage];",
    what: "rolling back a coalesced call undoes its whole span, not only the pages that flipped",
  },
  {
    id: "bus-view-value-mask",
    file: "src/bus/view.ts",
    search: "return (state & view.mask) === view.value;",
    replace: "return (state & view.value) === view.value;",
    what: "a view ignores the bits of its mask that must be clear",
  },
  {
    id: "bus-view-runs-no-merge",
    file: "src/bus/view_runs.ts",
    search: "if (current && current.populated === populated) {",
    replace: "if (current && current.populated === populated && current.end !== run.start) {",
    what: "neighbouring store runs that agree under a view are told as separate ranges",
  },
  {
    id: "bus-qemu-mixture-rounds",
    file: "src/bus/_qemu_state_change.ts",
    search: "if (inTarget === 0 || !spec.perPageMixtures) {",
    replace: "if (inTarget === 0 || spec.perPageMixtures) {",
    what: "QEMU engine: a mixed range is one round instead of one round per changing page",
  },
  {
    id: "bus-qemu-undo-failing",
    file: "src/bus/_qemu_state_change.ts",
    search: `spec.rollback === "notified-and-failing" ? [...notified, ...failing] : notified;`,
    replace: `spec.rollback === "notified-and-failing" ? notified : notified;`,
    what: "QEMU 11.1 engine: the failing listener is not sent its discard after a refusal",
  },
  {
    id: "bus-qemu-undo-failing-rest",
    file: "src/bus/_qemu_state_change.ts",
    search: "undo(spec, notified, calls.slice(i), outcome);",
    replace: "undo(spec, notified, [call], outcome);",
    what:
      "QEMU 11.1 engine: after a refusal the failing listener is not sent a discard of its runs " +
      "after the refused one (ram_discard_manager_notify_populate replays the whole range)",
    tests: ["tests/vmm_policy_test.ts"],
  },
  {
    id: "bus-qemu-commit-first",
    file: "src/bus/_qemu_state_change.ts",
    search: "  if (spec.commitFirst) {\n    store.update(start, end, setBits, clearBits);",
    replace:
      "  if (spec.commitFirst && false) {\n    store.update(start, end, setBits, clearBits);",
    what: "QEMU engine: guest_memfd's bitmap is written only after the listeners accepted",
  },
  {
    id: "bus-qemu-section-edge",
    file: "src/bus/_qemu_state_change.ts",
    search: "    if (start >= end) continue;\n    const state = run.state | spec.implied;",
    replace: "    if (start > end) continue;\n    const state = run.state | spec.implied;",
    what: "QEMU engine: a listener whose section ends where a run starts is told an empty range",
  },
  {
    id: "bus-registration-rollback-refused",
    file: "src/bus/_registration.ts",
    search: "const done = calls.slice(0, i);",
    replace: "const done = calls.slice(0, i + 1);",
    what: "a refused replay also discards the range the listener refused to populate",
  },
  {
    id: "bus-region-insert-stable",
    file: "src/bus/region.ts",
    search: "const at = this.#registrations.findIndex((r) => r.priority > reg.priority);",
    replace: "const at = this.#registrations.findIndex((r) => r.priority >= reg.priority);",
    what: "registration: among equal priorities the newest listener goes first",
  },
  {
    id: "bus-region-end-bound",
    file: "src/bus/region.ts",
    search: "    if (offset + size > this.size) {\n      this.#reject(",
    replace: "    if (offset + size >= this.size) {\n      this.#reject(",
    what: "off-by-one bound: a change that ends at the region's end is rejected",
  },
  {
    id: "bus-qemu-per-page-every-source",
    file: "src/bus/region.ts",
    search: "perPageMixtures: guestMemfd && this.#rules.perPageMixtures,",
    replace: "perPageMixtures: this.#rules.perPageMixtures,",
    what: "QEMU policies split every mixed change page by page, virtio-mem's unplug-all and a " +
      "source's removal too, not only guest_memfd's (ram_block_attributes_state_change)",
    tests: ["tests/vmm_policy_test.ts"],
  },
  {
    id: "bus-region-unregister-whole",
    file: "src/bus/region.ts",
    search:
      "const whole = this.#rules.wholeSectionUnregister || listener.acceptsDoubleDiscard === true;",
    replace: "const whole = listener.acceptsDoubleDiscard === true;",
    what: "QEMU 11.1 unregister sends one discard per populated run instead of the whole section",
  },
  {
    id: "bus-region-claim-last-page",
    file: "src/bus/region.ts",
    search: "      store.update(0, this.pages, mask, 0);",
    replace: "      store.update(0, this.pages - 1, mask, 0);",
    what: "a claimed built-in bit is not set on the region's last page",
  },

  {
    id: "bus-page-guard-granular",
    file: "src/bus/region.ts",
    search: "endPage - startPage === 1 && this.#pageGranular && ",
    replace: "endPage - startPage === 1 && ",
    what: "a one-page change skips the alignment check of a listener coarser than a page",
  },
  {
    id: "bus-page-guard-observers",
    file: "src/bus/region.ts",
    search: " &&\n      observers.length === 0\n",
    replace: "\n",
    what: "observers are not told of one-page changes",
  },
  {
    id: "bus-page-discard-order",
    file: "src/bus/region.ts",
    search:
      "      for (let i = registrations.length - 1; i >= 0; i--) {\n        const reg = registrations[i];",
    replace:
      "      for (let i = 0; i < registrations.length; i++) {\n        const reg = registrations[i];",
    what: "a one-page change tells its discards in ascending priority",
  },
  {
    id: "bus-page-section",
    file: "src/bus/region.ts",
    search:
      "        if (page < reg.startPage || page >= reg.endPage) continue;\n        if (!isPopulatedState(",
    replace: "        if (page < reg.startPage) continue;\n        if (!isPopulatedState(",
    what: "a one-page change populates a listener past the end of its section",
  },
  {
    id: "bus-page-rollback",
    file: "src/bus/region.ts",
    search: "rollBack(calls.slice(0, made), this.#toSection)",
    replace: "rollBack(calls.slice(0, made - 1), this.#toSection)",
    what: "a refused one-page change does not roll back the last call that succeeded",
  },
  {
    id: "bus-page-names",
    file: "src/bus/region.ts",
    search: "  if (!names.includes(name)) names.push(name);",
    replace: "  names.push(name);",
    what: "a change names a listener once per call when it calls it once per flipping run",
    tests: ["tests/bus_ordering_test.ts"],
  },
  {
    id: "bus-page-refusal-replans-live",
    file: "src/bus/region.ts",
    search: "const runs = [{ start: page, end: page + 1, state: stored }];",
    replace: "const runs = [...this.store.runs(page, page + 1)];",
    what:
      "a refused one-page change is reported from the state a listener left, not the one it chose from",
  },
  {
    id: "bus-page-refusal-implied-live",
    file: "src/bus/region.ts",
    search: "planCalls(runs, setBits, clearBits, registrations, implied);",
    replace: "planCalls(runs, setBits, clearBits, registrations, this.#implied);",
    what: "a refused one-page change is planned with the bits implied after a listener claimed one",
  },
  {
    id: "bus-qemu-observers-live",
    file: "src/bus/region.ts",
    search: "      const notifications = outcome.notifications;\n      this.#emit(observers,",
    replace:
      "      const notifications = outcome.notifications;\n      this.#emit(this.#observers,",
    what: "under a QEMU policy an observer added during a change hears of that change",
  },
  {
    id: "bus-registrations-insert-in-place",
    file: "src/bus/region.ts",
    search:
      "    this.#setRegistrations(this.#registrations.toSpliced(at === -1 ? Infinity : at, 0, reg));",
    replace:
      "    (this.#registrations as Registration[]).splice(at === -1 ? Infinity : at, 0, reg);\n    this.#setRegistrations(this.#registrations);",
    what:
      "registering edits the list a change is calling: a listener registered mid-change is called",
  },
  {
    id: "bus-observers-in-place",
    file: "src/bus/region.ts",
    search: "    this.#observers = [...this.#observers, observer];",
    replace: "    (this.#observers as Observer[]).push(observer);",
    what: "an observer added during a change hears of that change",
  },
  {
    id: "bus-registrations-in-place",
    file: "src/bus/region.ts",
    search: "    this.#setRegistrations(this.#registrations.toSpliced(index, 1));",
    replace:
      "    (this.#registrations as Registration[]).splice(index, 1);\n    this.#setRegistrations(this.#registrations);",
    what: "unregistering edits the list a change is calling: a planned listener is skipped",
  },

  // ---- simulated kernels -------------------------------------------------------------------
  {
    id: "attributes-quick-unaligned-size",
    file: "src/hw/memory_attributes.ts",
    search: "Number.isSafeInteger(pages) && pages > 0",
    replace: "Number.isSafeInteger(end) && pages > 0",
    what: "the attributes' quick test takes a size the sum rounds to a page multiple (2^60 + 4097)",
    tests: ["tests/hw_sim_attributes_test.ts"],
  },
  {
    id: "attributes-quick-negative",
    file: "src/hw/memory_attributes.ts",
    search: "first >= 0 && Number.isSafeInteger(pages)",
    replace: "Number.isSafeInteger(pages)",
    what:
      "the attributes' quick test takes a negative gpa to the table, which refuses it as its own",
    tests: ["tests/hw_sim_attributes_test.ts"],
  },
  {
    id: "attributes-quick-bigint",
    file: "src/hw/memory_attributes.ts",
    search: 'const numbers = typeof gpa === "number" && typeof size === "number";',
    replace: "const numbers = true;",
    what: "a BigInt gpa fails in the attributes' arithmetic, not as the named argument it is",
    tests: ["tests/hw_sim_attributes_test.ts"],
  },
  {
    id: "attributes-quick-fraction",
    file: "src/hw/memory_attributes.ts",
    search: "flags === 0 && Number.isInteger(gpa) && Number.isSafeInteger(first)",
    replace: "flags === 0 && Number.isSafeInteger(first)",
    what: "the attributes' quick test takes a gpa of 5e-324, which divides to page 0",
    tests: ["tests/hw_sim_attributes_test.ts"],
  },
  {
    id: "attributes-quick-wrap",
    file: "src/hw/memory_attributes.ts",
    search: "end < this.#frames &&",
    replace: "end <= this.#frames &&",
    what: "the attributes' quick test takes a range that ends at 2^64 (the u64 sum wraps)",
    tests: ["tests/hw_sim_attributes_test.ts"],
  },
  {
    id: "type1-enospc-limit",
    file: "src/hw/sim/type1.ts",
    search: "if (this.#tree.size >= this.dmaEntryLimit) {",
    replace: "if (this.#tree.size > this.dmaEntryLimit) {",
    what: "limit check: type1 accepts one mapping past dma_entry_limit",
  },
  {
    id: "type1-errno-order",
    file: "src/hw/sim/type1.ts",
    search:
      "const c = this.#tree.below(end);\n    if (c !== undefined && c.iova + c.size > iova) {",
    replace:
      "const c = this.#tree.size >= this.dmaEntryLimit ? undefined : this.#tree.below(end);\n    if (c !== undefined && c.iova + c.size > iova) {",
    what: "errno order: a full container answers ENOSPC before EEXIST for an overlapping map",
  },
  {
    id: "type1-memlock-no-host",
    file: "src/hw/sim/type1.ts",
    search: "} else if (this.#locked + size > this.memlockLimit) {",
    replace: "} else if (this.#locked + size > this.memlockLimit + 4096) {",
    what: "limit check: a container without a host pins one page past RLIMIT_MEMLOCK",
  },
  {
    id: "type1-aperture",
    file: "src/hw/sim/type1.ts",
    search: "if (this.iovaBits < 64 && end > 2 ** this.iovaBits) {",
    replace: "if (this.iovaBits < 64 && end > 2 ** this.iovaBits + 4096) {",
    what: "limit check: a map may end one page past the IOMMU aperture",
  },
  {
    id: "host-memlock",
    file: "src/hw/sim/host_memory.ts",
    search: "if (now + bytes > this.memlockLimit) {",
    replace: "if (now > this.memlockLimit) {",
    what: "limit check: memlock is checked before adding the new pin",
  },
  {
    id: "iommufd-table-page-limit",
    file: "src/hw/sim/iommufd.ts",
    search: "if (after > this.tablePageLimit) {",
    replace: "if (after > this.tablePageLimit + 1) {",
    what: "limit check: an IOAS may use one IO page-table page past tablePageLimit",
  },
  {
    id: "iommufd-unmap-cut-end",
    file: "src/hw/sim/iommufd.ts",
    search: "if (area.iova < iova || area.iova + area.size > end) {",
    replace: "if (area.iova < iova) {",
    what: "an iommufd unmap that cuts through an area's end removes the whole area",
  },
  {
    id: "iommufd-unmap-errno-order",
    file: "src/hw/sim/iommufd.ts",
    search:
      `    if (size === 0) throw new HwError(op, "EINVAL", "size must not be 0");\n    if (wrapsU64(iova, size)) {`,
    replace: `    if (wrapsU64(iova, size || 2 ** 64)) {`,
    what: "errno order: an iommufd unmap of size 0 is EOVERFLOW, not EINVAL",
  },
  {
    id: "iommufd-map-old-order",
    file: "src/hw/sim/iommufd.ts",
    search: "    // 2. pages.c iopt_alloc_user_pages: vaddr + size must not overflow;",
    replace: '    if (size === 0) throw new HwError(op, "EINVAL", "size must not be 0");\n' +
      "    if (!isAligned(iova, 4096) || !isAligned(vaddr, 4096) || !isAligned(size, 4096)) {\n" +
      '      throw new HwError(op, "EINVAL", "iova, vaddr and size must be 4 KiB aligned");\n' +
      "    }\n" +
      "    if (wrapsU64(iova, size) || wrapsU64(vaddr, size)) {\n" +
      '      throw new HwError(op, "EOVERFLOW", "iova or vaddr + size wraps past 2^64");\n' +
      "    }\n" +
      "    // 2. pages.c iopt_alloc_user_pages: vaddr + size must not overflow;",
    what: "errno order: iommufd MAP checks size 0 and all alignment before the wraps and overlap " +
      "(the simulator's order before it followed 6.18)",
  },
  {
    id: "iommufd-map-vaddr-align-before-overlap",
    file: "src/hw/sim/iommufd.ts",
    search: '    checkMapAlignment(op, "size", size);\n',
    replace:
      '    checkMapAlignment(op, "vaddr", vaddr);\n    checkMapAlignment(op, "size", size);\n',
    what: "errno order: iommufd MAP checks vaddr alignment with size's, before the iova rules",
  },
  {
    id: "iommufd-map-size-cap-before-vaddr-wrap",
    file: "src/hw/sim/iommufd.ts",
    search: "    if (addWrapsU64(vaddr, size)) {",
    replace: "    if (size >= 2 ** 64 - IO_PAGE_4K) {\n" +
      '      throw new HwError(op, "EINVAL", ' +
      "`size ${hex(size)} is above SIZE_MAX - PAGE_SIZE`);\n" +
      "    }\n" +
      "    if (addWrapsU64(vaddr, size)) {",
    what: "errno order: iommufd MAP checks the size cap before the vaddr wrap, as before 6.13",
  },
  {
    id: "iommufd-map-vaddr-end-at-2-64",
    file: "src/hw/sim/iommufd.ts",
    search: "    if (addWrapsU64(vaddr, size)) {",
    replace: "    if (wrapsU64(vaddr, size)) {",
    what: "an iommufd MAP whose vaddr range ends exactly at 2^64 is not EOVERFLOW",
  },
  {
    id: "iommufd-map-no-size-cap",
    file: "src/hw/sim/iommufd.ts",
    search: "    if (size >= 2 ** 64 - IO_PAGE_4K) {",
    replace: "    if (false && size >= 2 ** 64 - IO_PAGE_4K) {",
    what: "an iommufd MAP of a size above SIZE_MAX - PAGE_SIZE is not EINVAL",
  },
  {
    id: "iommufd-map-memlock-before-pin",
    file: "src/hw/sim/iommufd.ts",
    search: "    this.#host?.pin(vaddr, size, op);\n    let footprint",
    replace: "    this.#host?.lock(this.#counter, size, op);\n" +
      "    this.#host?.unlock(this.#counter, size);\n" +
      "    this.#host?.pin(vaddr, size, op);\n    let footprint",
    what: "errno order: an iommufd MAP past RLIMIT_MEMLOCK is ENOMEM before its pin fails",
  },
  {
    id: "iommufd-map-table-before-pin",
    file: "src/hw/sim/iommufd.ts",
    search: "    this.#host?.pin(vaddr, size, op);\n    let footprint",
    replace: "    this.#checkTablePages(op, [], [\n" +
      "      this.#table.footprint({ iova, size, vaddr }, this.#pageSizeAt(vaddr)),\n" +
      "    ]);\n" +
      "    this.#host?.pin(vaddr, size, op);\n    let footprint",
    what: "errno order: an iommufd MAP past tablePageLimit is ENOMEM before its pin fails",
  },
  {
    id: "kvm-memslot-id-limit",
    file: "src/hw/sim/kvm_vm.ts",
    search: "if (asId >= addressSpaces(this.privateMemory) || id >= KVM_USER_MEM_SLOTS) {",
    replace: "if (asId >= addressSpaces(this.privateMemory) || id > KVM_USER_MEM_SLOTS) {",
    what: "limit check: memslot id KVM_USER_MEM_SLOTS is accepted",
  },
  {
    id: "kvm-private-vm-smm-space",
    file: "src/hw/sim/kvm_vm.ts",
    search: "return privateMemory ? 1 : 2;",
    replace: "return 2;",
    what: "a VM with private memory takes memslots in the SMM address space",
    tests: ["tests/hw_sim_kvm_test.ts"],
  },
  {
    id: "kvm-memslot-pages-limit",
    file: "src/hw/sim/kvm_vm.ts",
    search: "if (size / this.pageSize > MAX_SLOT_PAGES) {",
    replace: "if (size / this.pageSize > MAX_SLOT_PAGES + 1) {",
    what: "limit check: a memslot may have one page more than KVM_MEM_MAX_NR_PAGES",
  },

  // ---- plugins -----------------------------------------------------------------------------
  {
    id: "virtio-mem-nack-before-error",
    file: "src/plugins/virtio_mem.ts",
    search: `    if (plug && (pluggedSize ?? this.pluggedSize) + size > this.requestedSize) {
      return CHECKED["requested-size"];
    }
    if (!this.#isAll(gpa, nbBlocks, !plug)) return CHECKED.state;`,
    replace: `    if (!this.#isAll(gpa, nbBlocks, !plug)) return CHECKED.state;
    if (plug && (pluggedSize ?? this.pluggedSize) + size > this.requestedSize) {
      return CHECKED["requested-size"];
    }`,
    what: "rule order: plugging plugged blocks past the requested size is ERROR, not NACK",
  },
  {
    id: "virtio-mem-busy-first",
    file: "src/plugins/virtio_mem.ts",
    search: `    const invalid = this.#rangeRule(gpa, nbBlocks);
    if (invalid !== undefined) return CHECKED[invalid];`,
    replace: `    if (this.busy) return CHECKED.busy;
    const invalid = this.#rangeRule(gpa, nbBlocks);
    if (invalid !== undefined) return CHECKED[invalid];`,
    what: "rule order: an invalid request during migration is BUSY, not ERROR",
  },
  {
    id: "virtio-mem-usable-end",
    file: "src/plugins/virtio_mem.ts",
    search: 'gpa + size > this.addr + this.usableRegionSize) return "outside";',
    replace: 'gpa + size >= this.addr + this.usableRegionSize) return "outside";',
    what: "off-by-one bound: a request ending at the usable region's end is ERROR",
  },
  {
    id: "virtio-mem-min-block-plugin",
    file: "src/plugins/virtio_mem.ts",
    search: "if (b < VIRTIO_MEM_MIN_BLOCK_SIZE) {",
    replace: "if (b < region.pageSize) {",
    what: "the plugin accepts blocks below QEMU's 1 MiB minimum (virtio_mem_set_block_size)",
    tests: ["tests/plugins_virtio_mem_test.ts"],
  },
  {
    id: "virtio-mem-min-block-config",
    file: "src/host/config/validate_devices.ts",
    search: "if (blockSize < VIRTIO_MEM_MIN_BLOCK_SIZE) {",
    replace: "if (blockSize < 4096) {",
    what: "config validation accepts virtio-mem blocks below QEMU's 1 MiB minimum",
    tests: ["tests/host_config_test.ts", "tests/cli_test.ts"],
  },
  {
    id: "virtio-mem-unplug-all-replug-all",
    file: "src/plugins/virtio_mem.ts",
    search: "return this.#putBack(plugged ?? [[offset, offset + size]]);",
    replace: "return this.#putBack([[offset, offset + size]]);",
    what: "memstate: an UNPLUG_ALL whose backing cannot be discarded plugs the whole device, " +
      "not just the blocks that were plugged",
    tests: ["tests/plugins_virtio_mem_rules_test.ts"],
  },
  {
    id: "virtio-mem-discard-first",
    file: "src/plugins/virtio_mem.ts",
    search: 'if (!plug && qemu && !this.#discard(offset, size)) return "BUSY";',
    replace: 'if (!plug && !this.#discard(offset, size)) return "BUSY";',
    what: "memstate's unplug gives up the backing before the listeners may refuse",
  },
  {
    id: "virtio-mem-put-back-refusal-escapes",
    file: "src/plugins/virtio_mem.ts",
    search: "if (!(e instanceof ConversionError)) failure = e;",
    replace: "failure = e;",
    what: "memstate: a listener refusing to take back blocks whose backing was kept escapes " +
      "UNPLUG / UNPLUG_ALL as an error, the later runs not put back, pluggedSize as before",
    tests: ["tests/plugins_virtio_mem_rules_test.ts"],
  },
  {
    id: "virtio-mem-put-back-region-failure-swallowed",
    file: "src/plugins/virtio_mem.ts",
    search: "    if (failure !== undefined) throw failure;\n",
    replace: "",
    what: "memstate: a put-back that fails the region answers as if the region could go on",
    tests: ["tests/plugins_virtio_mem_rules_test.ts"],
  },
  {
    id: "virtio-mem-put-back-size-kept",
    file: "src/plugins/virtio_mem.ts",
    search: "    this.pluggedSize -= lost;\n",
    replace: "",
    what: "memstate: blocks a listener refused to take back stay in pluggedSize, though unplugged",
    tests: ["tests/plugins_virtio_mem_rules_test.ts"],
  },
  {
    id: "virtio-mem-put-back-always-busy",
    file: "src/plugins/virtio_mem.ts",
    search: 'return lost === total ? "ACK" : "BUSY";',
    replace: 'return "BUSY";',
    what: "memstate: an UNPLUG none of whose blocks could be put back answers BUSY, though " +
      "it is unplugged",
    tests: ["tests/plugins_virtio_mem_rules_test.ts"],
  },
  {
    id: "virtio-mem-check-own-size",
    file: "src/plugins/virtio_mem.ts",
    search: "if (plug && (pluggedSize ?? this.pluggedSize) + size > this.requestedSize) {",
    replace: "if (plug && this.pluggedSize + size > this.requestedSize) {",
    what: "check ignores the plugged size a planner passes: a load NACKs what its unplugs freed",
    tests: ["tests/plugins_virtio_mem_rules_test.ts", "tests/cli_state_test.ts"],
  },
  {
    id: "type1-budget-align-down",
    file: "src/plugins/type1_budget.ts",
    search: "const first = Math.floor(s.start / g) * g;",
    replace: "const first = s.start;",
    what: "the type1 budget does not round a section's start down to its granularity",
  },
  {
    id: "type1-budget-headroom",
    file: "src/plugins/type1_budget.ts",
    search: "KVM_MAX_MEMSLOTS - sections.length : 0;",
    replace: "KVM_MAX_MEMSLOTS : 0;",
    what: "QEMU's memslot headroom does not subtract the sections",
  },
  {
    id: "type1-budget-exceeded",
    file: "src/plugins/type1_budget.ts",
    search: "exceeded: needed > limit,",
    replace: "exceeded: needed >= limit,",
    what: "a container whose budget exactly fills dma_entry_limit is refused",
  },
  {
    id: "iommufd-cut-at-end",
    file: "src/plugins/iommufd.ts",
    search: "      cutAt(s.offset);\n      cutAt(end);",
    replace: "      cutAt(s.offset);",
    what: "iommufd cut path: a discard does not split the area crossing its end",
  },
  {
    id: "iommufd-cut-boundary",
    file: "src/plugins/iommufd.ts",
    search: "if (area === undefined || area.end <= at) return;",
    replace: "if (area === undefined || area.end < at) return;",
    what: "iommufd cut path: a discard starting where an area ends cuts at the area's end",
  },
  {
    id: "kvm-coalesce-off",
    file: "src/plugins/kvm_attributes.ts",
    search: "          coalesce: true,",
    replace: "          coalesce: false,",
    what: "KVM coalescing: one attribute call and punch per flipped run, more calls than QEMU",
  },
  {
    id: "kvm-restore-one-page",
    file: "src/plugins/kvm_attributes.ts",
    search: "this.vm.setMemoryAttributes(gpa, s.size, attributes ^ KVM_MEMORY_ATTRIBUTE_PRIVATE);",
    replace: "this.vm.setMemoryAttributes(gpa, s.size, attributes);",
    what: "KVM restore: a failed punch of one page leaves the new attributes in place",
  },
  {
    id: "kvm-restore-runs",
    file: "src/plugins/kvm_attributes.ts",
    search: "const before = punch && s.uniform === false",
    replace: "const before = punch && s.uniform === undefined",
    what: "KVM restore: a failed punch of a coalesced call flips back pages that had not changed",
  },
  {
    id: "granules-undo",
    file: "src/plugins/_granules.ts",
    search: "    } else if (done > offset) {",
    replace: "    } else if (done > offset + granule) {",
    what: "memstate: a map failing at the second granule leaves the first one mapped",
  },
  {
    id: "granules-qemu-no-unmap",
    file: "src/plugins/_granules.ts",
    search: "    if (vmmRules(region.vmm).failedMapAlwaysUnmaps) {",
    replace: "    if (vmmRules(region.vmm).failedMapAlwaysUnmaps && done > offset) {",
    what: "QEMU policies: a map failing at the first granule makes no unmap of the section",
    tests: ["tests/plugins_dma_limit_test.ts"],
  },
  {
    id: "granules-qemu-undo-error-replaces",
    file: "src/plugins/_granules.ts",
    search: "      } catch {\n        // Reported and ignored by QEMU",
    replace: "      } catch (u) {\n        throw u; // Reported and ignored by QEMU",
    what: "QEMU policies: an unmap failing in a failed populate's undo replaces the map's error",
    tests: ["tests/plugins_dma_limit_test.ts"],
  },
  {
    id: "discard-all-takes-shared",
    file: "src/bus/region.ts",
    search: "    if ((clearBits & SHARED) !== 0) {",
    replace: "    if ((clearBits & SHARED) !== 0 && false) {",
    what: "discardAll clears guest_memfd's SHARED bit, an operation guest_memfd does not have",
    tests: ["tests/bus_validation_test.ts"],
  },
  {
    id: "sync-hook-promise-accepted",
    file: "src/bus/region.ts",
    search: "      refusePromise(hook[step]({ region: this, offset, size }, to), step);",
    replace: "      hook[step]({ region: this, offset, size }, to);",
    what: "a conversion hook that returns a promise is taken as done, its rejection unhandled",
    tests: ["tests/bus_sync_listener_test.ts"],
  },
  {
    id: "sync-observer-async-accepted",
    file: "src/bus/region.ts",
    search: '    refuseAsync(observer, "observer:");\n',
    replace: "",
    what: "an async observer is taken where it is given",
    tests: ["tests/bus_sync_listener_test.ts"],
  },
  {
    id: "virtio-mem-size-before-range",
    file: "src/plugins/virtio_mem.ts",
    search: "    const invalid = this.#rangeRule(gpa, nbBlocks);\n" +
      "    if (invalid !== undefined) return CHECKED[invalid];\n",
    replace: "    const invalid = this.#rangeRule(gpa, nbBlocks);\n" +
      "    if (plug && (pluggedSize ?? this.pluggedSize) + nbBlocks * this.blockSize > " +
      'this.requestedSize) return CHECKED["requested-size"];\n' +
      "    if (invalid !== undefined) return CHECKED[invalid];\n",
    what: "a plug past the requested size is NACK before its range is checked (QEMU: ERROR first)",
    tests: ["tests/plugins_virtio_mem_rules_test.ts"],
  },
  {
    id: "granules-memstate-undo-failure-clean",
    file: "src/plugins/_granules.ts",
    search: "        throw new ListenerUndoError(listener, e, undo);",
    replace: "        throw e;",
    what:
      "memstate: a populate whose undo failed is taken as a clean refusal, the plugin out of step",
    tests: ["tests/plugins_dma_limit_test.ts"],
  },
  {
    id: "bus-self-undo-ignored",
    file: "src/bus/_transaction.ts",
    search: "  return cause instanceof ListenerUndoError ? { call, cause } : undefined;",
    replace: "  return undefined;",
    what: "a listener that could not undo its own part does not fail the region",
    tests: ["tests/plugins_dma_limit_test.ts"],
  },
  {
    id: "bus-replay-self-undo-ignored",
    file: "src/bus/_registration.ts",
    search: "      const rollbackFailure = rollBack(done, toSection) ?? undoneItself(call, cause);",
    replace: "      const rollbackFailure = rollBack(done, toSection);",
    what: "a late plugin whose replayed populate could not undo its own part leaves the region up",
    tests: ["tests/plugins_dma_limit_test.ts"],
  },
  {
    id: "region-is-populated-view-unchecked",
    file: "src/bus/region.ts",
    search:
      '  isPopulated(range: Range, view: View = DMA_VIEW): boolean {\n    checkView(view, "view");\n',
    replace: "  isPopulated(range: Range, view: View = DMA_VIEW): boolean {\n",
    what: "isPopulated takes a malformed view and answers false instead of naming it",
    tests: ["tests/bus_validation_test.ts"],
  },
  {
    id: "kvm-discard-skips-hugetlb",
    file: "src/plugins/kvm_attributes.ts",
    search: "    if (shared === undefined) return;",
    replace: "    if (shared === undefined || entry.binding.backingPageSize !== 4096) return;",
    what: "a virtio-mem unplug leaves a hugetlb shared memfd allocated (QEMU punches it)",
    tests: ["tests/vmm_policy_test.ts"],
  },

  // ---- trace reader ------------------------------------------------------------------------
  {
    id: "trace-ignore-private",
    file: "src/host/trace/locate.ts",
    search: `if (event.op === "convert" && event.to === "shared") return "ignored";`,
    replace: `if (event.op === "convert") return "ignored";`,
    what: "a conversion to private outside RAM is ignored instead of an error",
  },
  {
    id: "trace-region-end",
    file: "src/host/trace/locate.ts",
    search: "if (start < region.base || end > region.base + region.size) {",
    replace: "if (start < region.base || end > region.base + region.size + 4096) {",
    what: "off-by-one bound: an event one page past its region's end is accepted",
  },
  {
    id: "trace-size-zero",
    file: "src/host/trace/event.ts",
    search: `if (size === 0) throw new TraceLineError(line, "size: must be positive, got 0");`,
    replace: `if (size < 0) throw new TraceLineError(line, "size: must be positive, got 0");`,
    what: "a trace line of size 0 is read as an event",
  },
  {
    id: "trace-quick-hex-case",
    file: "src/host/trace/qemu.ts",
    search: "const l = c | 0x20;",
    replace: "const l = c;",
    what: "the quick line reader misreads upper-case hex digits",
  },
  {
    id: "trace-quick-comment",
    file: "src/host/trace/qemu.ts",
    search: "if (text.charCodeAt(first) === 0x23) return undefined; // a '#' comment",
    replace: "",
    what: "the quick line reader reads a commented-out conversion",
  },
  {
    id: "trace-locate-quick-align",
    file: "src/host/trace/locate.ts",
    search: "      return aligned ? r : undefined;",
    replace: "      return r;",
    what: "a misaligned event inside one region is located instead of rejected",
  },
  {
    id: "section-uniform-unregister",
    file: "src/bus/_registration.ts",
    search: "      mixed: true,",
    replace: "",
    what: "a whole-section discard at unregister claims every page flips",
  },
  {
    id: "trace-simpletrace-args",
    file: "src/host/trace/qemu.ts",
    search: "const match = LOG_ARGS.exec(args) ?? SIMPLE_ARGS.exec(args);",
    replace: "const match = LOG_ARGS.exec(args);",
    what: "simpletrace.py lines are not read",
  },

  // ---- invariant checker -------------------------------------------------------------------
  {
    id: "invariants-equal-neighbours",
    file: "src/host/invariants.ts",
    search: "if (run.state === previous) {",
    replace: "if (run.state === previous && runs < 0) {",
    what: "the invariant checker misses two neighbouring runs of one state",
  },
  {
    id: "invariants-run-count",
    file: "src/host/invariants.ts",
    search: "if (runs !== region.store.runCount) {",
    replace: "if (runs > region.store.runCount) {",
    what: "the invariant checker misses a runCount above the runs there are",
  },
  {
    id: "invariants-plugins",
    file: "src/host/invariants.ts",
    search: "      report.violations.push(...verifyLines(plugin, region));",
    replace: "      verifyLines(plugin, region);",
    what: "the invariant checker drops what the plugins' verify found",
  },
  {
    id: "invariants-verify-throw-escapes",
    file: "src/host/invariants.ts",
    search: '  const called = callSync(() => plugin.verify!(region), "verify");',
    replace: "  const called: { value: unknown } | { problem: string } = {\n" +
      "    value: plugin.verify!(region),\n  };",
    what: "a plugin's verify that throws escapes the checker: exit 70 after the run, no report",
    tests: ["tests/host_invariants_test.ts", "tests/plugins_define_test.ts"],
  },
  {
    id: "report-stats-throw-escapes",
    file: "src/host/report/report.ts",
    search: '  const called = callSync(() => plugin.stats(), "stats");',
    replace:
      "  const called: { value: unknown } | { problem: string } = { value: plugin.stats() };",
    what: "a plugin's stats that throws escapes the report: exit 70 after the run, no report",
    tests: ["tests/plugins_define_test.ts"],
  },

  // ---- hooks are synchronous: an async hook refused, a returned promise a refusal ----------
  {
    id: "sync-define-async-populate",
    file: "src/plugins/define.ts",
    search: "for (const hook of SYNC_HOOKS) {",
    replace: "for (const hook of SYNC_HOOKS.slice(2)) {",
    what: "definePlugin takes an async populate or discard, which the bus never awaits",
    tests: ["tests/plugins_define_test.ts"],
  },
  {
    id: "sync-define-promise-accepted",
    file: "src/plugins/define.ts",
    search: "counters.call(op, () => refusePromise(spec[op](s, entry.state, ctx), op));",
    replace: "counters.call(op, () => spec[op](s, entry.state, ctx));",
    what: "a defined plugin's populate that returns a promise is counted and taken as accepted",
    tests: ["tests/plugins_define_test.ts"],
  },
  {
    id: "sync-transaction-promise-accepted",
    file: "src/bus/_transaction.ts",
    search: 'if (kind === "populate") refusePromise(listener.populate(section), kind);',
    replace: 'if (kind === "populate") listener.populate(section);',
    what: "a populate that returns a promise is accepted on the general path (several runs)",
    tests: ["tests/bus_sync_listener_test.ts"],
  },
  {
    id: "sync-one-page-promise-accepted",
    file: "src/bus/region.ts",
    search: 'refusePromise(reg.listener.populate(section), "populate");',
    replace: "reg.listener.populate(section);",
    what: "a populate that returns a promise is accepted on the one-page path",
    tests: ["tests/bus_sync_listener_test.ts"],
  },
  {
    id: "sync-replay-promise-accepted",
    file: "src/bus/_registration.ts",
    search: '      invoke(call, "populate", toSection(call));',
    replace: "      call.registration.listener.populate(toSection(call));",
    what: "a replayed populate that returns a promise is accepted: the listener registers",
    tests: ["tests/bus_sync_listener_test.ts"],
  },
  {
    id: "sync-qemu-promise-accepted",
    file: "src/bus/_qemu_state_change.ts",
    search: "        invoke(call, call.kind, section);",
    replace: '        if (call.kind === "populate") reg.listener.populate(section);\n' +
      "        else reg.listener.discard(section);",
    what: "under a QEMU policy a populate that returns a promise is accepted",
    tests: ["tests/bus_sync_listener_test.ts"],
  },
  {
    id: "sync-register-async-accepted",
    file: "src/bus/region.ts",
    search: "      refuseAsync(listener[fn], `listener ${name}: ${fn}`);\n",
    replace: "",
    what: "region.register takes a listener whose populate or discard is async",
    tests: ["tests/bus_sync_listener_test.ts"],
  },
  {
    id: "sync-rejection-unhandled",
    file: "src/util/_sync.ts",
    search: "    value.then(undefined, () => {});",
    replace: "    void value;",
    what: "a refused promise's rejection is left unhandled: it ends the process with a stack",
    tests: ["tests/bus_sync_listener_test.ts"],
  },
  {
    id: "sync-virtio-mem-async-discard",
    file: "src/plugins/virtio_mem.ts",
    search:
      '    refuseAsync(discard, `${who}: discardBacking`, " (memstate does not await it)");\n',
    replace: "",
    what: "virtioMem takes an async discardBacking, which it never awaits",
    tests: ["tests/plugins_virtio_mem_rules_test.ts"],
  },
  {
    id: "sync-virtio-mem-discard-promise",
    file: "src/plugins/virtio_mem.ts",
    search: '() => refusePromise(discard(offset, size), "discardBacking"),',
    replace: "() => discard(offset, size),",
    what: "a discardBacking that returns a rejected promise counts as discarded, its rejection " +
      "unhandled",
    tests: ["tests/plugins_virtio_mem_rules_test.ts"],
  },
  {
    id: "sync-module-async-method",
    file: "src/host/plugin_modules.ts",
    search: "const how = notSynchronous(p[k]);",
    replace: 'const how = k === "attach" ? notSynchronous(p[k]) : undefined;',
    what: "a plugin module's plugin with an async stats or verify is taken",
    tests: ["tests/plugins_define_test.ts"],
  },
  {
    id: "sync-host-attach-promise",
    file: "src/host/build.ts",
    search: 'refusePromise(plugin.attach(byName.get(name)!), "attach");',
    replace: "plugin.attach(byName.get(name)!);",
    what: "a plugin module's attach that returns a rejected promise is taken as attached",
    tests: ["tests/plugins_define_test.ts"],
  },

  // ---- saved host state (--load-state) -----------------------------------------------------
  {
    id: "state-load-nack-unchecked",
    file: SF,
    search: "plugged.set(d, before + (set ? size : -size));",
    replace: "",
    what: "a load checks each plug against the size plugged before the load: two parts that " +
      "fit alone plug more than virtio-mem's requestedSize, the device answers NACK half way",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-unplugs-not-counted",
    file: SF,
    search: "d.check(gpa, size / d.blockSize, set, before);",
    replace: "d.check(gpa, size / d.blockSize, set, d.pluggedSize);",
    what: "a load's plugs are checked against the device's plugged size before the load: what " +
      "its unplugs free does not count, and a load that fits is refused",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-block-start-unchecked",
    file: SF,
    search: "if (checked.rule !== undefined) throw",
    replace: 'if (checked.rule !== undefined && checked.rule !== "unaligned") throw',
    what: "a load plugs partial blocks: the device answers ERROR half way",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-usable-unchecked",
    file: SF,
    search: "if (checked.rule !== undefined) throw",
    replace: 'if (checked.rule !== undefined && checked.rule !== "outside") throw',
    what: "a load plugs past virtio-mem's usable range: the device answers ERROR half way",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-busy-unchecked",
    file: SF,
    search: "if (checked.rule !== undefined) throw",
    replace: 'if (checked.rule !== undefined && checked.rule !== "busy") throw',
    what: "a load plugs through a busy virtio-mem device: it answers BUSY half way",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-unplug-outside-devices",
    file: SF,
    search: "          if (!set) throw refuse(p, set, outside(devices));",
    replace: "",
    what: "a load unplugs memory outside every virtio-mem device, a state no device makes",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-device-answer-uncaught",
    file: SF,
    search: "          e instanceof DeviceRefusal)",
    replace: "          e instanceof SyntaxError)",
    what: "a device refusing a load's plug is an internal error, the load left half made",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-no-undo",
    file: SF,
    search: "for (const made of done.reverse()) {",
    replace: "for (const made of done.slice(0, 0)) {",
    what: "a change refused while loading leaves the changes before it made",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-qemu-refused-step-kept",
    file: SF,
    search: "      done.push(...madeParts(step));\n",
    replace: "",
    what: "under a QEMU policy a refused load keeps what the refused change left in the store",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-device-put-back-undone",
    file: "src/plugins/virtio_mem.ts",
    search: "if (!(e instanceof ConversionError)) failure = e;",
    replace: "if (!(e instanceof ConversionError)) failure = e;\n          else throw e;",
    what: "a load's unplug whose backing and putting back fail is reported as 'nothing was " +
      "loaded', the region left partly unplugged",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-plan-unclaimed-clear",
    file: "src/bus/snapshot.ts",
    search: "const state = current.state | unclaimed;",
    replace: "const state = current.state;",
    what: "an apply's plan reads PLUGGED nobody claimed as clear, though every page counts " +
      "as plugged: a load unplugs where no virtio-mem device is",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-plan-claims-left-out",
    file: "src/bus/snapshot.ts",
    search: "const all = region.bits.mask | claimed;",
    replace: "const all = region.bits.mask;",
    what: "an apply's plan leaves out the bits the snapshot claims: a load checks no PLUGGED " +
      "change of a region without virtio-mem",
    tests: ["tests/cli_state_test.ts"],
  },
  {
    id: "state-load-region-by-region",
    file: SF,
    search: "  for (const set of [false, true]) {\n    for (const p of plans) {",
    replace: "  for (const p of plans) {\n    for (const set of [false, true]) {",
    what: "a load sets in one region before it clears in the next: a DMA limit refuses a fit",
    tests: ["tests/cli_state_test.ts"],
  },

  // ---- real Linux backend ------------------------------------------------------------------
  {
    id: "linux-create-vm-signals-unblocked",
    file: "src/hw/linux/linux_kvm.ts",
    search: "const created = withSignalsBlocked(() => {",
    replace: "const created = ((f: () => number | HwError) => f())(() => {",
    what: "KVM_CREATE_VM runs with signals unblocked: a handler may overwrite errno",
    tests: ["tests/linux_signals_test.ts"],
  },
  {
    id: "linux-offarg-table",
    file: "src/hw/linux/arguments.ts",
    search: "? PAGES[value / PAGE] :",
    replace: "? PAGES[(value / PAGE) >> 1] :",
    what: "a page-multiple length reaches fallocate as a smaller BigInt",
    tests: ["tests/linux_structs_test.ts"],
  },
  {
    id: "linux-attributes-closed-order",
    file: "src/hw/linux/linux_kvm.ts",
    search: "    const vmFd = this.#vm(op);\n    if (this.realParts.attributes) {",
    replace:
      "    this.#attributes.get(gpa);\n    const vmFd = this.#vm(op);\n    if (this.realParts.attributes) {",
    what: "a closed VM reports a bad gpa before EBADF, unlike the simulator",
    tests: ["tests/linux_errors_test.ts"],
  },

  // ---- command line: output files ----------------------------------------------------------
  {
    id: "cli-outputs-not-all-or-none",
    file: "src/cli/output_files.ts",
    search: "      await Promise.all(staged.map((s) => Deno.remove(s.temporary).catch(() => {})));",
    replace: "",
    what: "a failed output write leaves the other outputs' temporary files behind",
    tests: ["tests/cli_front_door_test.ts"],
  },
  {
    id: "cli-same-file-through-links-missed",
    file: "src/cli/preflight.ts",
    search: "return { destination: destination(path), inode };",
    replace: "return { destination: resolve(path), inode };",
    what: "two outputs reaching one new file through a linked directory are let through",
    tests: ["tests/cli_front_door_test.ts"],
  },
  {
    id: "cli-file-url-plugin-not-an-input",
    file: "src/cli/preflight.ts",
    search: "  if (!/^file:/i.test(specifier)) return undefined;",
    replace: "  return undefined;",
    what: "a plugin named by a file: URL may be overwritten by an output",
    tests: ["tests/cli_front_door_test.ts"],
  },

  // ---- command line: input taken at its word ------------------------------------------------
  {
    id: "cli-config-duplicate-key-kept",
    file: "src/host/config/load.ts",
    search: "const duplicates = duplicateKeys(text);",
    replace: 'const duplicates = duplicateKeys("");',
    what: "a configuration key given twice runs with its last value, without a word",
    tests: ["tests/cli_input_rules_test.ts"],
  },
  {
    id: "jsonl-duplicate-key-one-colon-spare",
    file: "src/host/trace/jsonl.ts",
    search: "  if (colons > keys.length) {",
    replace: "  if (colons > keys.length + 1) {",
    what: "a trace line whose only extra colon is a repeated key's skips the duplicate check",
    tests: ["tests/cli_input_rules_test.ts"],
  },
  {
    id: "cli-repeated-flag-accepted",
    file: "src/cli/options.ts",
    search: "    if (options[token.name]?.multiple) continue;",
    replace:
      '    if (options[token.name]?.multiple || options[token.name]?.type === "boolean") continue;',
    what: "a flag given twice (--json --json) is let through",
    tests: ["tests/cli_input_rules_test.ts"],
  },
  {
    id: "cli-repeated-param-last-wins",
    file: "src/cli/options.ts",
    search: "    if (Object.hasOwn(params, key)) {",
    replace: "    if (key === undefined) {",
    what: "--param KEY given twice keeps the last value",
    tests: ["tests/cli_input_rules_test.ts"],
  },
  {
    id: "cli-follow-banner-before-checks",
    file: "src/cli/commands.ts",
    search:
      "    result = await runSession(config, { ...options, onProgress: progress?.update, onStart });",
    replace:
      "    onStart?.();\n    result = await runSession(config, { ...options, onProgress: progress?.update });",
    what: "--follow says it follows before the trace is open and the host built",
    tests: ["tests/cli_input_rules_test.ts"],
  },
  {
    id: "compare-nothing-starts-exit-0",
    file: "src/host/compare.ts",
    search: "    if (first !== undefined) throw first;",
    replace: "    void first;",
    what: "compare on a host no variant can start prints a table of refusals and exits 0",
    tests: ["tests/cli_input_rules_test.ts"],
  },

  // ---- trace read on a worker --------------------------------------------------------------
  {
    id: "trace-worker-others-last",
    file: "src/host/trace/_read_on_worker.ts",
    search: "    const end = o < others.length ? others[o][0] - o : count;",
    replace: "    const end = count;",
    what: "items other than conversions come after the batch's conversions, out of trace order",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "trace-lines-partial-dropped",
    file: "src/host/trace/stream.ts",
    search: "const whole = partial.length > 0 ? partial + piece : piece;",
    replace: "const whole = piece;",
    what: "a line split across two chunks loses the part in the first chunk",
    tests: ["tests/trace_worker_test.ts", "tests/trace_stream_test.ts"],
  },
  {
    id: "trace-lines-unfinished-lost",
    file: "src/host/trace/stream.ts",
    search: "const rest = text.slice(takeLines(text, items));",
    replace: 'const rest = "";\n    takeLines(text, items);',
    what: "the unfinished last line of a chunk is dropped instead of carried to the next",
    tests: ["tests/trace_worker_test.ts", "tests/trace_stream_test.ts"],
  },
  {
    id: "trace-decode-not-streamed",
    file: "src/host/trace/stream.ts",
    search: "take(decoder.decode(chunk, { stream: true }), items);",
    replace: "take(decoder.decode(chunk), items);",
    what: "a character whose bytes two chunks split is read as two replacement characters",
    tests: ["tests/trace_stream_test.ts", "tests/trace_worker_test.ts"],
  },
  {
    id: "trace-quick-at-past-limit",
    file: "src/host/trace/stream.ts",
    search:
      "head >= 0 && head < nl && partial.length === 0 && overlong === 0 &&\n        nl - start <= MAX_LINE_LENGTH",
    replace: "head >= 0 && head < nl && partial.length === 0 && overlong === 0",
    what: "a conversion line longer than the limit, whole in one chunk, is read instead of refused",
    tests: ["tests/trace_stream_test.ts"],
  },
  {
    id: "trace-quick-at-after-partial",
    file: "src/host/trace/stream.ts",
    search: "head >= 0 && head < nl && partial.length === 0 && overlong === 0 &&",
    replace: "head >= 0 && head < nl && overlong === 0 &&",
    what: "a line begun in the chunk before is read from this chunk's start only",
    tests: ["tests/trace_stream_test.ts", "tests/trace_worker_test.ts"],
  },
  {
    id: "trace-quick-at-after-overlong",
    file: "src/host/trace/stream.ts",
    search: "head >= 0 && head < nl && partial.length === 0 && overlong === 0 &&",
    replace: "head >= 0 && head < nl && partial.length === 0 &&",
    what: "the end of an overlong line, whole in the next chunk, is read as a conversion",
    tests: ["tests/trace_stream_test.ts"],
  },
  {
    id: "trace-quick-at-line-start",
    file: "src/host/trace/qemu.ts",
    search: "  let first = from;\n",
    replace: "  let first = 0;\n",
    what: "a line read where it lies is looked at for a '#' from the chunk's start, not its own",
    tests: ["tests/host_trace_quick_test.ts", "tests/trace_stream_test.ts"],
  },
  {
    id: "trace-quick-at-tail-short",
    file: "src/host/trace/qemu.ts",
    search: "  while (i < to) {\n    const c = text.charCodeAt(i++);",
    replace: "  while (i < to - 1) {\n    const c = text.charCodeAt(i++);",
    what: "a conversion line's last character is not checked (a word run on after the direction)",
    tests: ["tests/host_trace_quick_test.ts"],
  },
  {
    id: "trace-worker-pack-position",
    file: "src/host/trace/_reader_worker.ts",
    search: "others.push([position, item]);",
    replace: "others.push([position + 1, item]);",
    what: "a batch's other items are placed one later than read (after the next conversion)",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "trace-chunks-reuse-before-peek",
    file: "src/host/trace/stream.ts",
    search: "  let chunks: AsyncIterable<Uint8Array> = raw;\n",
    replace:
      "  let chunks: AsyncIterable<Uint8Array> = raw;\n  if (reuse !== undefined) reuse.safe = true;\n",
    what: "reads share one buffer from the first, while peek still holds the chunks it read",
    tests: ["tests/trace_worker_test.ts", "tests/trace_stream_test.ts", "tests/host_trace_test.ts"],
  },
  {
    id: "trace-simpletrace-holds-chunk",
    file: "src/host/trace/simpletrace.ts",
    search: "    buf = joined;\n",
    replace: "    buf = buf.length === 0 ? chunk : joined;\n",
    what:
      "simpletrace keeps a chunk it has not copied (a header not yet whole) while the next is read",
    tests: ["tests/trace_stream_test.ts"],
  },
  {
    id: "trace-worker-credit-every-batch",
    file: "src/host/trace/_read_on_worker.ts",
    search: "if (++taken % CREDIT_STEP === 0) worker?.postMessage(CREDIT_STEP);",
    replace: "++taken;\n            worker?.postMessage(1);",
    what: "credit goes back one message per batch, as before round 11",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "trace-worker-credit-too-much",
    file: "src/host/trace/_read_on_worker.ts",
    search: "if (++taken % CREDIT_STEP === 0) worker?.postMessage(CREDIT_STEP);",
    replace: "++taken;\n            worker?.postMessage(CREDIT_STEP);",
    what: "every batch taken gives the worker CREDIT_STEP more, so it runs ahead without bound",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "trace-worker-credit-never",
    file: "src/host/trace/_read_on_worker.ts",
    search: "if (++taken % CREDIT_STEP === 0) worker?.postMessage(CREDIT_STEP);",
    replace: "++taken;",
    what: "no credit ever goes back: a read of more than WORKER_CREDIT batches stalls",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "trace-worker-not-ended",
    file: "src/host/trace/_read_on_worker.ts",
    search: "    worker?.terminate();\n    worker = undefined;",
    replace: "    worker = undefined;",
    what: "a read that ends (to its end, stopped or closed) leaves its worker running",
    tests: ["tests/trace_worker_test.ts"],
  },
  // ---- hot-path shortcuts (issue 13, round 3) ---------------------------------------------
  {
    id: "attributes-private-count-stale",
    file: "src/hw/memory_attributes.ts",
    search: "    this.#privatePages = -1;\n",
    replace: "",
    what: "the private-byte count is not recounted after KVM_SET_MEMORY_ATTRIBUTES changes it",
  },
  {
    id: "bits-multiple-any-quotient",
    file: "src/util/_bits.ts",
    search: "  return Number.isInteger(value / powerOfTwo);",
    replace: "  return !Number.isNaN(value / powerOfTwo);",
    what: "every value counts as a multiple of a power of two: misaligned ranges pass",
  },
  {
    id: "runner-timed-detach-only",
    file: "src/host/event_runner.ts",
    search: "d.config.attachAt !== undefined || d.config.detachAt !== undefined",
    replace: "d.config.attachAt !== undefined",
    what: "a device configured only to detach at an event number never detaches",
  },
  {
    id: "plan-call-list-first",
    file: "src/bus/_plan.ts",
    search: "      if (calls === undefined) calls = [call];\n      else calls.push(call);",
    replace: "      if (calls === undefined) calls = [call];",
    what: "only the first planned call is made: later listeners or ranges are never told",
  },
  {
    id: "store-dense-page-calm-kept",
    file: RTS,
    search: " || changes[map] + inner <= this.#runsAt) return false;",
    replace: ") return false;",
    what: "a one-page flip that calms a map to mapAt / 2 leaves it a map",
  },
  {
    id: "store-dense-page-past-end",
    file: RTS,
    search: " || page + 1 === this.length) return false;",
    replace: ") return false;",
    what: "a one-page flip at the store's last page compares it with a page past the end",
  },
  {
    id: "finger-root-leaf-falls-back",
    file: "src/store/_extent_index.ts",
    search: "    return this.#depth === 0 || this.#leaf.keys.length - count > IN_PLACE_MIN;",
    replace: "    return this.#leaf.keys.length - count > IN_PLACE_MIN;",
    what: "removals from a small root leaf go through sorted-btree and a search from the root",
  },
  {
    id: "finger-child-leaf-shrinks-in-place",
    file: "src/store/_extent_index.ts",
    search: "    return this.#depth === 0 || this.#leaf.keys.length - count > IN_PLACE_MIN;",
    replace: "    return this.#depth <= 1 || this.#leaf.keys.length - count > IN_PLACE_MIN;",
    what: "leaves under the root shrink in place past IN_PLACE_MIN, down to empty",
  },
  {
    id: "store-uniform-run-one-short",
    file: RTS,
    search: "      if (index.nextKey() >= end) return value;",
    replace: "      if (index.nextKey() >= end - 1) return value;",
    what: "a range whose last page starts the next run is called uniform",
  },
  {
    id: "store-uniform-chunk-unbounded",
    file: RTS,
    search: "      if (chunkSlot >= 0 && end <= ce) return chunkSlot;",
    replace: "      if (chunkSlot >= 0) return chunkSlot;",
    what: "a range that leaves a uniform chunk is called uniform without looking past it",
  },
  {
    id: "store-uniform-first-run-decides",
    file: RTS,
    search: "    for (const run of this.#runs(start, end)) return run.end >= end ? run.state : -1;",
    replace: "    for (const run of this.#runs(start, end)) return run.state;",
    what: "a range of several runs reports its first run's state as the range's",
  },
  {
    id: "bitmap-uniform-one-short",
    file: "src/store/bitmap_store.ts",
    search: "    return this.#runEnd(start, end, state) >= end ? state : -1;",
    replace: "    return this.#runEnd(start, end, state) >= end - 1 ? state : -1;",
    what: "the bitmap calls a range uniform when only its last page differs",
  },
  {
    id: "sim-fallocate-offset-unchecked",
    file: "src/hw/sim/memory_file.ts",
    search: '    checkArgument(op, "offset", offset);\n',
    replace: "",
    what:
      "a simulated fallocate takes an offset that is not an integer (NaN) instead of refusing it",
    tests: ["tests/hw_sim_kvm_test.ts"],
  },
  {
    id: "runner-columns-direction",
    file: "src/host/event_runner.ts",
    search: "      const to = directionAt(batch, k);\n",
    replace: '      const to = "shared";\n',
    what: "every conversion the runner takes from a worker's columns goes to shared",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "unpack-columns-direction",
    file: "src/host/trace/_read_on_worker.ts",
    search: 'return batch.shared[k] === 1 ? "shared" : "private";',
    replace: 'return batch.shared[k] === 0 ? "shared" : "private";',
    what:
      "every conversion of a worker's batch goes the other way (its shared flag read backwards)",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "runner-columns-never-stop",
    file: "src/host/event_runner.ts",
    search: "      if (!go) {\n        this.#stopped = true;\n        return false;\n      }\n",
    replace: "",
    what:
      "a conversion from the columns that must stop the run (strict, QEMU stopping the VM) lets the rest of its batch go on",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "runner-columns-probe-told-of-stop",
    file: "src/host/event_runner.ts",
    search:
      "      if (!go) {\n        this.#stopped = true;\n        return false;\n      }\n      if (probe !== undefined && result.events >= this.#probeDue) this.#askProbe(probe);\n",
    replace:
      "      if (probe !== undefined && result.events >= this.#probeDue) this.#askProbe(probe);\n      if (!go) {\n        this.#stopped = true;\n        return false;\n      }\n",
    what:
      "the probe is told of the conversion that stopped the run, which stepConversion does not tell it",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "runner-columns-progress-skipped",
    file: "src/host/event_runner.ts",
    search: "    if (this.#timed.length > 0 || this.#options.onProgress !== undefined) {",
    replace: "    if (this.#timed.length > 0) {",
    what: "onProgress is not called while conversions come from a worker's columns",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "runner-columns-timed-devices-skipped",
    file: "src/host/event_runner.ts",
    search: "    if (this.#timed.length > 0 || this.#options.onProgress !== undefined) {",
    replace: "    if (this.#options.onProgress !== undefined) {",
    what:
      "devices timed to attach or detach at an event number are skipped while conversions come from columns",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "runner-columns-probe-never-told",
    file: "src/host/event_runner.ts",
    search:
      "      if (probe !== undefined && result.events >= this.#probeDue) this.#askProbe(probe);",
    replace: "",
    what: "the probe is not told of events applied from columns (no timeline samples in a replay)",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "runner-columns-latency-weight-dropped",
    file: "src/host/event_runner.ts",
    search:
      "      if (t0 >= 0) probe!.conversionTime(performance.now() - t0, weight);\n      if (!go) {",
    replace:
      "      if (t0 >= 0) probe!.conversionTime(performance.now() - t0, 1);\n      if (!go) {",
    what: "a replay times a sample of its conversions from columns but counts each timed one once",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "runner-conversion-never-stops",
    file: "src/host/event_runner.ts",
    search:
      "    if (t0 >= 0) probe!.conversionTime(performance.now() - t0, weight);\n    return this.#settle(go, true);",
    replace:
      "    if (t0 >= 0) probe!.conversionTime(performance.now() - t0, weight);\n    return this.#settle(true, true);",
    what: "a conversion that must stop the run (strict, a failed region) lets it go on",
  },
  {
    id: "runner-latency-weight-dropped",
    file: "src/host/event_runner.ts",
    search:
      "    if (t0 >= 0) probe!.conversionTime(performance.now() - t0, weight);\n    return this.#settle",
    replace:
      "    if (t0 >= 0) probe!.conversionTime(performance.now() - t0, 1);\n    return this.#settle",
    what: "the runner times a sample of a long run but counts each timed conversion once",
    tests: ["tests/host_html_test.ts"],
  },
  {
    id: "latency-sample-unweighted",
    file: "src/host/report/latency.ts",
    search: "    this.#counts[i] += weight;",
    replace: "    this.#counts[i] += 1;",
    what:
      "a sampled conversion counts once in the histogram, not for the conversions it stands for",
    tests: ["tests/report_latency_timeline_test.ts"],
  },
  {
    id: "latency-sample-rate",
    file: "src/host/report/latency.ts",
    search: "(Math.imul(index, 0x9e3779b1) >>> 27) === 0 ? SAMPLE_EVERY : 0",
    replace: "(Math.imul(index, 0x9e3779b1) >>> 29) === 0 ? SAMPLE_EVERY : 0",
    what: "one conversion in eight is timed, each still counted for 32",
    tests: ["tests/report_latency_timeline_test.ts"],
  },
  {
    id: "store-dense-page-first-offset",
    file: RTS,
    search: "    if (o === 0 || o === this.#chunk - 1 || page + 1 === this.length) return false;",
    replace: "    if (o === this.#chunk - 1 || page + 1 === this.length) return false;",
    what:
      "a one-page flip at a dense chunk's first page compares it with the page before, in the chunk's slot",
  },
  {
    id: "store-dense-page-last-offset",
    file: RTS,
    search: "    if (o === 0 || o === this.#chunk - 1 || page + 1 === this.length) return false;",
    replace: "    if (o === 0 || page + 1 === this.length) return false;",
    what: "a one-page flip at a dense chunk's last page compares it with a page past the chunk",
  },
  {
    id: "store-dense-page-uniform-kept",
    file: RTS,
    search: "    if (dense.changes[d] + inner === 0 || ",
    replace: "    if (",
    what: "a one-page flip that leaves a dense chunk uniform keeps it dense",
  },
  {
    id: "kvm-stats-order-lost",
    file: "src/plugins/kvm_attributes.ts",
    search: "    if (count.setMemoryAttributes++ === 0) counters.calls.setMemoryAttributes ??= 0;",
    replace: "    count.setMemoryAttributes++;",
    what: "the KVM plugin's stats list setMemoryAttributes after calls made later",
  },
  {
    id: "session-scan-skips-columns",
    file: "src/host/session.ts",
    search: "    const batch = Array.isArray(next.value) ? next.value : unpack(next.value);",
    replace: "    const batch = Array.isArray(next.value) ? next.value : [];",
    what: "regions from a trace read on a worker miss the memslots of its first batches",
    tests: ["tests/trace_worker_test.ts"],
  },
  {
    id: "build-attach-refusal-internal",
    file: "src/host/build.ts",
    search: "      if (dev.config.attachAt === undefined) attachAtStart(cfg, host, name);",
    replace: "      if (dev.config.attachAt === undefined) host.attach(name);",
    what: "a device the hardware refuses at start-up surfaces as a bus error, not a config error",
  },
  {
    id: "build-attach-half-kept",
    file: "src/host/build.ts",
    search: "                c.plugin.detach(prior);",
    replace: "                  void prior;",
    what: "a device refused by its second region stays registered on its first",
  },
  {
    id: "build-attach-any-refusal-is-config",
    file: "src/host/build.ts",
    search: "    if (limit === undefined) throw e;",
    replace: "    if (limit === undefined && !(e instanceof Error)) throw e;",
    what: "a plugin's own bug while attaching at start-up is reported as the configuration's fault",
  },
  {
    id: "runner-probe-due-late",
    file: "src/host/event_runner.ts",
    search: "if (go && probe !== undefined && result.events >= this.#probeDue)",
    replace: "if (go && probe !== undefined && result.events > this.#probeDue)",
    what: "the probe is told one event after the one it asked for (the timeline samples late)",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "runner-probe-due-nan",
    file: "src/host/event_runner.ts",
    search: 'typeof due === "number" && due > result.events ? due',
    replace: 'typeof due === "number" ? due',
    what: "a probe answering NaN from afterEvent is never told again",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "timeline-next-sample-late",
    file: "src/host/report/timeline.ts",
    search: "    return this.#next;\n",
    replace: "    return this.#next + 1;\n",
    what: "the sampler names the event after its next sample, so the recorder misses it",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "runner-probe-ignores-next-event",
    file: "src/host/event_runner.ts",
    search: "const due = probe.nextEvent?.();",
    replace: "const due = undefined as number | undefined;",
    what: "the runner tells the recorder of every event although it said when it next wants one",
    tests: ["tests/host_run_test.ts"],
  },
  {
    id: "runner-probe-return-as-due",
    file: "src/host/event_runner.ts",
    search: "    probe.afterEvent(result.events, result.conversions.requested);\n",
    replace:
      '    const told = probe.afterEvent(result.events, result.conversions.requested) as unknown;\n    if (typeof told === "number") {\n      this.#probeDue = told;\n      return;\n    }\n',
    what: "a number returned by afterEvent is taken as the next event the probe wants",
    tests: ["tests/host_run_test.ts"],
  },
  // ---- hw: the attribute table's bit per frame (_frame_bits.ts) ----------------------------------
  {
    id: "frame-bits-cache-kept-on-drop",
    file: "src/hw/_frame_bits.ts",
    search: "    if (this.#cachedKeys[at] === key) {\n      this.#cachedKeys[at] = -1;",
    replace: "    if (this.#cachedKeys[at] === key && key < 0) {\n      this.#cachedKeys[at] = -1;",
    what:
      "a block dropped by a range that covers it whole stays cached, and takes later one-frame sets",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  {
    id: "frame-bits-tail-one-short",
    file: "src/hw/_frame_bits.ts",
    search: "if (tail !== undefined && end < tailStart + BLOCK_FRAMES) {",
    replace: "if (tail !== undefined && end < tailStart + BLOCK_FRAMES - 1) {",
    what: "a range that ends one frame before a block's end is taken as covering the block whole",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  {
    id: "frame-bits-head-ignored",
    file: "src/hw/_frame_bits.ts",
    search: "const head = start > headStart ? this.#blocks.get(headKey) : undefined;",
    replace: "const head = undefined as Int32Array | undefined;",
    what: "a range that starts inside a block leaves the block's part to the store",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  {
    id: "frame-bits-fill-recount-short",
    file: "src/hw/_frame_bits.ts",
    search: "const first = a >>> 5, last = (b - 1) >>> 5;",
    replace: "const first = a >>> 5, last = (b - 2) >>> 5;",
    what: "a fill's count leaves out its last word when the range ends on that word's first bit",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  {
    id: "frame-bits-make-leaves-store",
    file: "src/hw/_frame_bits.ts",
    search: "    this.#store.set(blockStart, blockStart + BLOCK_FRAMES, 0);\n",
    replace: "",
    what: "a block made from the store leaves the store's bits under it, so they count twice",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  {
    id: "frame-bits-collapse-inverted",
    file: "src/hw/_frame_bits.ts",
    search: "const state = this.#blocks.get(key)![ONES] === 0 ? 0 : 1;",
    replace: "const state = this.#blocks.get(key)![ONES] === 0 ? 1 : 0;",
    what: "a block made uniform goes back to the store with the other bit",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  {
    id: "frame-bits-runs-skip-bit",
    file: "src/hw/_frame_bits.ts",
    search: "findNextBit(bitsOf(block), pos + 1, stop, state === 0)",
    replace: "findNextBit(bitsOf(block), pos + 2, stop, state === 0)",
    what: "a run inside a block takes in the bit after its first, whatever that bit is",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  {
    id: "frame-bits-hit-count-kept",
    file: "src/hw/_frame_bits.ts",
    search: "        this.#hitCounts[slot] = 1;",
    replace: "        this.#hitCounts[slot] += 1;",
    what:
      "a block whose sets take over a counter keeps the other block's count, so neither needs 16",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  {
    id: "attributes-private-ignores-mask",
    file: "src/hw/memory_attributes.ts",
    search: "? (mask & 1) === 0 ? 0 : store.ones",
    replace: "? store.ones",
    what: "privateBytes counts the one supported attribute as PRIVATE whatever it is",
    tests: ["tests/hw_frame_bits_test.ts"],
  },
  // ---- bench: the spread of the report's targets over runs (the README's table) ----------------
  {
    id: "report-runs-upper-median",
    file: "bench/report_runs.ts",
    search: "median: quantile(sorted, 0.5)",
    replace: "median: sorted[sorted.length >> 1]",
    what: "the median of an even number of runs is the upper middle one, not between the two",
    tests: ["tests/bench_report_runs_test.ts"],
  },
  {
    id: "report-runs-every-flag-a-miss",
    file: "bench/report_runs.ts",
    search: "if (m.met === false) s.flaggedMisses++;",
    replace: "s.flaggedMisses++;",
    what: "a run that met its target but was flagged as noise counts as a flagged miss",
    tests: ["tests/bench_report_runs_test.ts"],
  },
  {
    id: "report-runs-skipped-counted",
    file: "bench/report_runs.ts",
    search: "if (!wasMeasured(m)) continue;",
    replace: "if (m === undefined) continue;",
    what: "a row a run skipped (no /dev/kvm) counts as measured, and missed",
    tests: ["tests/bench_report_runs_test.ts"],
  },
  // ---- bench: the store rows' repetitions kept out of fresh memory ----------------------------
  {
    id: "store-rows-timed-build-uncollected",
    file: "bench/store_rows.ts",
    search:
      "      collected = collect() && collected;\n      const store = subject.make(workload);",
    replace: "      const store = subject.make(workload);",
    what: "the store rows' timed builds run on uncollected garbage, in fresh memory by stretches",
    tests: ["tests/bench_measurement_test.ts"],
  },
  {
    id: "store-rows-collect-timed",
    file: "bench/store_rows.ts",
    search:
      "      collected = collect() && collected;\n      const store = subject.make(workload);\n" +
      "      const f0 = minorFaults();\n      const t0 = performance.now();",
    replace: "      const store = subject.make(workload);\n      const f0 = minorFaults();\n" +
      "      const t0 = performance.now();\n      collected = collect() && collected;",
    what: "the store rows' collection runs inside each build's timed part",
    tests: ["tests/bench_measurement_test.ts"],
  },
  {
    id: "store-rows-uncollected-unsaid",
    file: "bench/store_rows.ts",
    search: "      collected ? undefined : UNCOLLECTED_NOTE,",
    replace: "      undefined,",
    what: "a store row timed without collecting young garbage says nothing of it",
    tests: ["tests/bench_measurement_test.ts"],
  },
  {
    id: "report-runs-gc-not-exposed",
    file: "bench/report.ts",
    search: '  "--v8-flags=--expose-gc",\n];',
    replace: "];",
    what: "bench:runs runs the report without V8's gc, so its store rows collect nothing",
    tests: ["tests/bench_measurement_test.ts"],
  },
  {
    id: "store-rows-big-warms-once",
    file: "bench/store_rows.ts",
    search: "  return Math.ceil(WARM_CONVERSIONS / workload.conversions.length);",
    replace: "  if (SUBJECTS.some((s) => s.bytesFor(workload) > BIG_STORE)) return 1;\n" +
      "  return Math.ceil(WARM_CONVERSIONS / workload.conversions.length);",
    what: "the 16 TiB row warms up once again, and is timed before V8 compiles its code again",
    tests: ["tests/bench_measurement_test.ts"],
  },
  {
    id: "store-rows-timed-write-back",
    file: "bench/store_rows.ts",
    search: "      const store = subject.make(workload);\n      const f0",
    replace: "      const store = subject.make(workload, true);\n      const f0",
    what: "a timed bitmap build writes back only the converted pages, leaving them in the cache",
    tests: ["tests/bench_measurement_test.ts"],
  },
  {
    id: "store-rows-warm-whole-reset",
    file: "bench/store_rows.ts",
    search: "subject.apply(subject.make(workload, true), workload.conversions);",
    replace: "subject.apply(subject.make(workload), workload.conversions);",
    what: "warm-up builds write the whole bitmap, as slow at 16 TiB as before",
    tests: ["tests/bench_measurement_test.ts"],
  },
  {
    id: "store-rows-write-back-skips-last",
    file: "bench/store_rows.ts",
    search: "for (let i = 0; i < held.conversions.length; i++) store.set(",
    replace: "for (let i = 0; i < held.conversions.length - 1; i++) store.set(",
    what: "a write-back misses the last conversion's pages: the warm-up starts from a dirty bitmap",
    tests: ["tests/bench_measurement_test.ts"],
  },
  {
    id: "type1-map-wrap-einval",
    file: "src/hw/sim/type1.ts",
    search: '      op,\n      "EOVERFLOW",',
    replace: '      op,\n      "EINVAL",',
    what: "a wrapping type1 MAP is EINVAL, as before the overflow fixes that 6.18 has",
    tests: ["tests/hw_sim_type1_test.ts"],
  },
  {
    id: "type1-map-wrap-after-alignment",
    file: "src/hw/sim/type1.ts",
    search: '  if (size === 0) throw new HwError(op, "EINVAL", "size must not be 0");\n',
    replace: '  if (size === 0) throw new HwError(op, "EINVAL", "size must not be 0");\n' +
      "  checkDmaMapAlignment(op, iova, vaddr, size);\n",
    what: "type1 MAP checks alignment before a wrap, as before the overflow fixes",
    tests: ["tests/hw_sim_type1_test.ts"],
  },
  {
    id: "kvm-gmem-bind-eexist",
    file: "src/hw/sim/kvm_vm.ts",
    search: '          "EINVAL",\n          `${file.name} range',
    replace: '          "EEXIST",\n          `${file.name} range',
    what: "a guest_memfd range bound twice is EEXIST, which 6.18 does not return",
    tests: ["tests/hw_sim_kvm_test.ts"],
  },
  {
    id: "settings-qemu-any-page-size",
    file: "src/host/config/settings_rules.ts",
    search: "    if (qemu && region.pageSize !== 4096) {",
    replace: "    if (false && qemu && region.pageSize !== 4096) {",
    what: "a QEMU policy takes a region page size QEMU does not track",
    tests: ["tests/host_config_test.ts"],
  },
  {
    id: "region-qemu-any-page-size",
    file: "src/bus/region.ts",
    search: '    if (this.vmm !== "memstate" && pageSize !== 4096) {',
    replace: '    if (this.vmm === "qemu-10.1" && pageSize !== 4096) {',
    what: "a qemu-11.1 region takes a page size QEMU does not track",
    tests: ["tests/bus_validation_test.ts"],
  },
  {
    id: "region-bits-low-32",
    file: "src/bus/region.ts",
    search: " && bits <= 0x7fffffff && ",
    replace: " && ",
    what: "change takes bits of 2^32 and more, which `&` cuts to their low 32 bits",
    tests: ["tests/bus_validation_test.ts"],
  },
  {
    id: "workload-params-no-minimum",
    file: "src/host/workloads/registry.ts",
    search: "      : limit.min !== undefined && value < limit.min.value",
    replace: "      : limit.min !== undefined && value < 0",
    what: "an explicit inflight=0 or windowBytes=0 is taken and silently made 1 or a page",
    tests: ["tests/host_workloads_test.ts"],
  },
  {
    id: "workload-params-any-multiple",
    file: "src/host/workloads/registry.ts",
    search: "      : limit.multipleOf !== undefined && value % limit.multipleOf.value !== 0",
    replace: "      : limit.multipleOf !== undefined && value % 1 !== 0",
    what: "an explicit swiotlbBytes=4097 is taken and silently rounded up to a page",
    tests: ["tests/host_workloads_test.ts"],
  },
  {
    id: "region-10-1-vmem-replay-exits",
    file: "src/bus/region.ts",
    search: 'const mode = this.#virtioMemManaged() ? "stay-registered" : this.#rules.failedReplay;',
    replace: "const mode = this.#rules.failedReplay;",
    what: "a refused replay on a qemu-10.1 region virtio-mem manages makes QEMU exit",
    tests: ["tests/vmm_policy_test.ts"],
  },
  {
    id: "region-10-1-vmem-unregister-empty",
    file: "src/bus/region.ts",
    search: "const done = this.#virtioMemManaged() && !this.#anyPlugged()",
    replace: "const done = false",
    what: "unregistering from an empty qemu-10.1 virtio-mem region still sends a whole discard",
    tests: ["tests/vmm_policy_test.ts"],
  },
  {
    id: "vmem-unaligned-gpa",
    file: "src/plugins/virtio_mem.ts",
    search: "    if ((region.base + offset) % b !== 0) {",
    replace: "    if (offset % b !== 0) {",
    what: "a virtio-mem device at a guest-physical address off the block size is accepted",
    tests: ["tests/plugins_virtio_mem_test.ts"],
  },
  {
    id: "config-vmem-unaligned-gpa",
    file: "src/host/config/validate_devices.ts",
    search: "(region.fields.base! + offset) % blockSize !== 0",
    replace: "offset % blockSize !== 0",
    what: "a configured virtio-mem device whose region base + offset is off the block size passes",
    tests: ["tests/host_config_test.ts"],
  },
  {
    id: "vmem-nb-blocks-any",
    file: "src/plugins/virtio_mem.ts",
    search: '    if (nbBlocks > VIRTIO_MEM_MAX_NB_BLOCKS) return "nb-blocks"; // le16 nb_blocks\n',
    replace: "",
    what: "a virtio-mem call of more than 65535 blocks, which le16 nb_blocks cannot name, is made",
    tests: ["tests/virtio_mem_nb_blocks_test.ts"],
  },
  {
    id: "runner-vmem-one-request",
    file: "src/host/event_runner.ts",
    search: "const chunk = VIRTIO_MEM_MAX_NB_BLOCKS * device.blockSize;",
    replace: "const chunk = event.size;",
    what: "a trace plug of more than 65535 blocks is one request (answered ERROR)",
    tests: ["tests/virtio_mem_nb_blocks_test.ts"],
  },
  {
    id: "state-load-vmem-one-request",
    file: "src/host/state_file.ts",
    search: "        at + VIRTIO_MEM_MAX_NB_BLOCKS * device.blockSize / page,\n",
    replace: "",
    what: "a state load plugs more than 65535 blocks in one request (refused)",
    tests: ["tests/virtio_mem_nb_blocks_test.ts"],
  },
  {
    id: "vmem-no-realize-discard",
    file: "src/plugins/virtio_mem.ts",
    search: "    if (o.incoming !== true && !this.#discard(offset, size)) {",
    replace: "    if (false) {",
    what: "a new virtio-mem device keeps whatever its backing held (no realize discard)",
    tests: ["tests/plugins_virtio_mem_test.ts", "tests/vmm_policy_test.ts"],
  },
  {
    id: "vmem-refused-plug-keeps-backing",
    file: "src/plugins/virtio_mem.ts",
    search: "      if (plug) this.#discard(offset, size);",
    replace: "      if (plug && qemu) this.#discard(offset, size);",
    what: "under memstate a refused plug keeps what it may have populated (no discard)",
    tests: ["tests/plugins_virtio_mem_test.ts"],
  },
  {
    id: "type1-memlock-before-pin",
    file: "src/hw/sim/type1.ts",
    search:
      '      if (bad !== undefined && bad - vaddr > room) host.lock("mm", size, op); // ENOMEM',
    replace: '      if (size > room) host.lock("mm", size, op); // ENOMEM',
    what: "type1 MAP charges RLIMIT_MEMLOCK before pinning: ENOMEM where the kernel says EFAULT",
    tests: ["tests/hw_sim_type1_test.ts"],
  },
  {
    id: "config-linux-memlock-ignored",
    file: "src/host/config/settings_rules.ts",
    search: '  if (config.backend === "linux" && config.memlockLimit !== Infinity) {',
    replace: "  if (false) {",
    what: "a memlockLimit no container enforces (linux backend) is accepted silently",
    tests: ["tests/host_config_test.ts"],
  },
  {
    id: "io-table-free-on-unmap",
    file: "src/hw/sim/io_page_table.ts",
    search:
      "        if (!partial && !hasCallBoundary(r * region, region, a, first, period)) continue;",
    replace: "        continue;",
    what: "a table page no area needs is freed at once on unmap (no retained tables at the ends)",
    tests: ["tests/hw_io_page_table_test.ts"],
  },
  {
    id: "io-table-interior-freed",
    file: "src/hw/sim/io_page_table.ts",
    search: "      if (!whole || hi - lo < 2) continue;",
    replace: "      if (!whole || hi - lo < 2 || true) continue;",
    what: "the tables strictly inside an unmapped area are freed whatever the unmap calls",
    tests: ["tests/hw_io_page_table_test.ts"],
  },
  {
    id: "io-table-boundary-aligned",
    file: "src/hw/sim/io_page_table.ts",
    search: "        if (b % region !== 0 && r > lo && r < hi) set.add(r, r);",
    replace: "        if (r > lo && r < hi) set.add(r, r);",
    what: "a call boundary on a table's edge is taken to cut the table (no free)",
    tests: ["tests/hw_io_page_table_test.ts"],
  },
  {
    id: "io-table-large-entry-keeps",
    file: "src/hw/sim/io_page_table.ts",
    search:
      "      this.#retained[level].remove(Math.floor(fp.iova / region), Math.floor((fp.end - 1) / region));",
    replace: "      void region;",
    what: "a map neither reuses nor frees (under a larger entry) a retained table page",
    tests: ["tests/hw_io_page_table_test.ts"],
  },
  {
    id: "io-table-limit-ignores-retained",
    file: "src/hw/sim/io_page_table.ts",
    search: "    let pages = this.tablePages + fp.exclusiveTables - this.#retainedTouched(fp);",
    replace: "    let pages = this.tablePages - this.retainedTablePages + fp.exclusiveTables;",
    what: "tablePageLimit and tablePagesAfter do not count retained table pages",
    tests: ["tests/hw_io_page_table_test.ts"],
  },
  {
    id: "iommufd-unmap-one-call-per-area",
    file: "src/hw/sim/iommufd.ts",
    search: "contiguousRunCalls(a.footprint, IOMMUFD_UNMAP_BATCH_RUNS)",
    replace: "contiguousRunCalls(a.footprint, 1)",
    what: "iommufd unmaps run by run like type1 instead of in batches of 5461 runs",
    tests: ["tests/hw_io_page_table_test.ts"],
  },
  {
    id: "no-host-backing-1g",
    file: "src/hw/sim/io_page_table.ts",
    search: "  const v = size ?? IO_PAGE_4K;",
    replace: "  const v = size ?? IO_PAGE_1G;",
    what: "without a host the containers assume physically contiguous 1 GiB backing",
    tests: ["tests/hw_io_page_table_test.ts"],
  },
];
