// The HTML report in a real browser: Debian's chromium driven by puppeteer-core. Each report
// opens with no console error and no network request; regions sit at their GPAs (pixel
// positions of their edges); a column with more shared pages has the stronger colour, the one
// the colour scale gives its fraction; dragging zooms until exact extents are drawn where they
// are; a tooltip appears with the GPA range and the IOMMU mappings; the timelines are charts.
//
// Run with `deno task test:browser` (not part of `deno task test`: the file name does not match
// Deno's test pattern). Where no chromium can be found, every test is reported as ignored with
// the reason in its name. Screenshots go to out/browser/ (git-ignored).
import assert from "node:assert/strict";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { main } from "../../cli.ts";
import {
  cumAt,
  type Cumulative,
  cumulativeFromBins,
  cumulativeFromRuns,
  decodeVarints,
  fromBase64,
  luminance,
  rampColor,
  SHARED_RAMP,
} from "../../src/host/report/density.ts";
import type { PageData } from "../../src/host/report/html_client.ts";

const SHOTS = "out/browser";
/** `CHROMIUM` names the browser to use (and only that one); else Debian's places. */
const CANDIDATES = Deno.env.get("CHROMIUM")
  ? [Deno.env.get("CHROMIUM")!]
  : ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The first chromium that exists, or why there is none. */
function findChromium(): { path?: string; reason?: string } {
  for (const path of CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return { path };
    } catch {
      // try the next
    }
  }
  return {
    reason: `no chromium at ${CANDIDATES.join(", ")} (install Debian's chromium, or set CHROMIUM)`,
  };
}

const chromium = findChromium();
if (!chromium.path) console.log(`browser tests skipped: ${chromium.reason}`);
const skip = chromium.path ? "" : ` (skipped: ${chromium.reason})`;

/** The reports under test: name, then the CLI arguments after `run`. */
const REPORTS: [string, string[]][] = [
  ["tdx-trace", ["examples/tdx-trace.json"]],
  ["iommufd-1t", ["examples/iommufd-1t.json"]],
  ["boot-1t", ["examples/type1-1t.json", "--workload", "boot"]],
  ["tdx-16g", ["examples/tdx-16g.json"]],
  ["virtio-mem-cvm", ["examples/virtio-mem-cvm.json"]],
  ["hotplug", ["examples/hotplug.json"]],
];

let dir = "";
const files = new Map<string, string>();
let browser: Browser | undefined;

async function setup(): Promise<void> {
  if (browser) return;
  dir = await Deno.makeTempDir({ prefix: "memstate-browser-" });
  await Deno.mkdir(SHOTS, { recursive: true });
  for (const [name, args] of REPORTS) {
    const file = `${dir}/${name}.html`;
    const err: string[] = [];
    const code = await main(["run", ...args, "--html", file], {
      out: () => {},
      err: (t) => err.push(t),
      interactive: false,
    });
    assert.equal(code, 0, `memstate run ${args.join(" ")}: ${err.join("\n")}`);
    files.set(name, file);
  }
  browser = await puppeteer.launch({
    executablePath: chromium.path,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A page showing report `name`, failing on console errors and network requests. */
async function open(name: string): Promise<{ page: Page; problems: string[]; data: PageData }> {
  await setup();
  const page = await browser!.newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${(e as Error).message ?? e}`));
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    const url = r.url();
    if (url.startsWith("file:") || url.startsWith("data:") || url.startsWith("about:")) {
      r.continue();
    } else {
      problems.push(`network request: ${url}`);
      r.abort();
    }
  });
  await page.setViewport({ width: 1400, height: 1000, deviceScaleFactor: 1 });
  await page.goto(`file://${files.get(name)}`, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready]", { timeout: 10_000 });
  const html = await Deno.readTextFile(files.get(name)!);
  const json = /<script type="application\/json" id="memstate-data">([^<]*)<\/script>/.exec(html)!;
  return { page, problems, data: JSON.parse(json[1]) };
}

interface Plot {
  viewStart: number;
  viewEnd: number;
  plotLeft: number;
  plotWidth: number;
  bandTop: number;
  bandHeight: number;
  mode: string;
  extents: number;
}

async function plot(page: Page): Promise<Plot> {
  const d = await page.$eval(
    "#space-main",
    (c) => ({ ...(c as unknown as HTMLElementLike).dataset }),
  );
  return {
    viewStart: Number(d.viewStart),
    viewEnd: Number(d.viewEnd),
    plotLeft: Number(d.plotLeft),
    plotWidth: Number(d.plotWidth),
    bandTop: Number(d.bandTop),
    bandHeight: Number(d.bandHeight),
    mode: d.mode ?? "",
    extents: Number(d.extents),
  };
}

/** Enough of an element's type for `$eval` callbacks (the DOM library is not loaded here). */
interface HTMLElementLike {
  dataset: Record<string, string>;
}

/** RGB of the main canvas's pixels in row `y`, columns `[x0, x1)` (CSS pixels, dpr 1). */
async function pixels(page: Page, y: number, x0: number, x1: number): Promise<number[]> {
  return await page.$eval(
    "#space-main",
    (c, y, x0, x1) => {
      // deno-lint-ignore no-explicit-any
      const ctx = (c as any).getContext("2d");
      const data = ctx.getImageData(x0, y, x1 - x0, 1).data as Uint8ClampedArray;
      const out: number[] = [];
      for (let i = 0; i < data.length; i += 4) {
        out.push(
          (data[i] << 16) | (data[i + 1] << 8) | data[i + 2],
        );
      }
      return out;
    },
    y,
    x0,
    x1,
  );
}

/** The page's GPA-to-x mapping, recomputed here from the view it reports. */
function xOf(p: Plot, gpa: number): number {
  return p.plotLeft + (gpa - p.viewStart) / (p.viewEnd - p.viewStart) * p.plotWidth;
}

/** Whether a strip of pixels is the hole pattern (mostly pure white) rather than memory. */
function looksLikeHole(strip: number[]): boolean {
  return strip.filter((c) => c === 0xffffff).length >= strip.length * 0.4;
}

/** Cumulative counts of every region, rebuilt here from the page's data. */
function regionCums(data: PageData): { base: number; end: number; ps: number; cum: Cumulative }[] {
  return data.regions.map((r) => ({
    base: r.base,
    end: r.base + r.size,
    ps: r.pageSize,
    cum: r.mode === "exact"
      ? cumulativeFromRuns(decodeVarints(fromBase64(r.runs!)), 1, 2, r.implied)
      : cumulativeFromBins(decodeVarints(fromBase64(r.bins!)), r.binPages!, r.pages),
  }));
}

/** Shared fraction of the RAM in GPA `[g0, g1)`, or -1 where there is none. */
function sharedFraction(cums: ReturnType<typeof regionCums>, g0: number, g1: number): number {
  let covered = 0, shared = 0;
  for (const r of cums) {
    const a = Math.max(g0, r.base), b = Math.min(g1, r.end);
    if (a >= b) continue;
    const pa = (a - r.base) / r.ps, pb = (b - r.base) / r.ps;
    covered += cumAt(r.cum, 0, pb) - cumAt(r.cum, 0, pa);
    shared += cumAt(r.cum, 1, pb) - cumAt(r.cum, 1, pa);
  }
  return covered > 0 ? shared / covered : -1;
}

function near(a: number, b: number, tolerance = 3): boolean {
  for (let shift = 0; shift <= 16; shift += 8) {
    if (Math.abs(((a >> shift) & 255) - ((b >> shift) & 255)) > tolerance) return false;
  }
  return true;
}

const hex = (c: number) => "#" + c.toString(16).padStart(6, "0");

async function shot(page: Page, name: string, selector?: string): Promise<void> {
  if (selector) {
    const box = await (await page.$(selector))!.boundingBox();
    await page.screenshot({ path: `${SHOTS}/${name}.png`, clip: box! });
  } else {
    await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  }
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name: `browser: ${name}${skip}`,
    ignore: !chromium.path,
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });

for (const [name] of REPORTS) {
  test(`${name} opens with no console error or network request; regions sit at their GPAs`, async () => {
    const { page, problems, data } = await open(name);
    try {
      await shot(page, `${name}-page`);
      let p = await plot(page);
      assert.equal(p.viewStart, 0);
      assert.equal(p.viewEnd, data.space.end);
      // Each region's edges, each in a view where it is 40% of the width.
      for (const r of data.regions) {
        await page.evaluate(
          (s, e) =>
            (globalThis as unknown as { memstate: { setView(s: number, e: number): void } })
              .memstate.setView(s, e),
          r.base - r.size * 0.75,
          r.base + r.size * 1.75,
        );
        p = await plot(page);
        const y = p.bandTop + p.bandHeight / 2;
        const left = Math.round(xOf(p, r.base)), right = Math.round(xOf(p, r.base + r.size));
        assert.ok(right - left > 100, `${r.name} is drawn ${right - left} px wide`);
        const inside = await pixels(page, y, left + 3, left + 15);
        assert.ok(!looksLikeHole(inside), `${r.name}: memory right of its base at x=${left}`);
        const insideEnd = await pixels(page, y, right - 15, right - 3);
        assert.ok(!looksLikeHole(insideEnd), `${r.name}: memory left of its end at x=${right}`);
        const before = data.regions.some((o) => o.base < r.base && o.base + o.size >= r.base);
        if (!before && r.base > 0 && left - 15 > p.plotLeft) {
          assert.ok(
            looksLikeHole(await pixels(page, y, left - 15, left - 3)),
            `${r.name}: a hole left of its base at x=${left}`,
          );
        }
        const after = data.regions.some((o) => o.base === r.base + r.size);
        if (!after && right + 15 < p.plotLeft + p.plotWidth) {
          assert.ok(
            looksLikeHole(await pixels(page, y, right + 3, right + 15)),
            `${r.name}: a hole right of its end at x=${right}`,
          );
        }
        // The hex axis labels sit where their addresses are.
        const ticks = JSON.parse(
          await page.$eval("#space-main", (c) => (c as unknown as HTMLElementLike).dataset.ticks),
        ) as { gpa: number; x: number }[];
        assert.ok(ticks.length >= 2);
        for (const t of ticks) assert.ok(Math.abs(t.x - Math.round(xOf(p, t.gpa))) <= 1);
      }
      // The timelines are uPlot charts.
      const charts = await page.$$eval(".uplot canvas", (c) => c.length);
      assert.ok(charts >= 3, `${charts} chart canvases`);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });
}

test("a column with more shared pages has the stronger colour, the one its fraction gets", async () => {
  for (const name of ["tdx-trace", "boot-1t"]) {
    const { page, problems, data } = await open(name);
    try {
      const p = await plot(page);
      const cums = regionCums(data);
      const y = p.bandTop + p.bandHeight / 2;
      const row = await pixels(page, y, p.plotLeft, p.plotLeft + p.plotWidth);
      const span = p.viewEnd - p.viewStart;
      const columns = row.map((pixel, i) => {
        const g0 = p.viewStart + i / p.plotWidth * span;
        const g1 = p.viewStart + (i + 1) / p.plotWidth * span;
        return { i, pixel, f: sharedFraction(cums, g0, g1) };
        // RAM only, and not an exact extent's white edge.
      }).filter((c) => c.f >= 0 && c.pixel !== 0xffffff);
      const shared = columns.filter((c) => c.f > 0).sort((a, b) => b.f - a.f);
      assert.ok(shared.length >= 2, `${name}: columns with shared pages`);
      const most = shared[0];
      const least = shared.findLast((c) => c.f < most.f / 10)!;
      assert.ok(least, `${name}: a column with far fewer shared pages`);
      const privateColumn = columns.find((c) => c.f === 0)!;
      for (const c of [most, least, privateColumn]) {
        const want = rampColor(SHARED_RAMP, c.f);
        assert.ok(
          near(c.pixel, want),
          `${name}: column ${c.i} (${c.f}) is ${hex(c.pixel)}, the scale says ${hex(want)}`,
        );
      }
      assert.ok(luminance(most.pixel) < luminance(least.pixel), `${name}: stronger colour`);
      assert.ok(luminance(least.pixel) < luminance(privateColumn.pixel));
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  }
});

test("dragging zooms in until the extents are drawn exactly, at their addresses", async () => {
  const { page, problems, data } = await open("boot-1t");
  try {
    let p = await plot(page);
    assert.equal(p.mode, "density", "a 1 TiB boot starts as density");
    const canvas = (await (await page.$("#space-main"))!.boundingBox())!;
    const cums = regionCums(data);
    const y = canvas.y + p.bandTop + p.bandHeight / 2;
    for (let step = 0; step < 12 && p.mode !== "exact"; step++) {
      // Drag 60 px around the column with the most shared pages.
      const span = p.viewEnd - p.viewStart;
      let best = p.plotLeft, bestF = -1;
      for (let i = 0; i < p.plotWidth; i++) {
        const f = sharedFraction(
          cums,
          p.viewStart + i / p.plotWidth * span,
          p.viewStart + (i + 1) / p.plotWidth * span,
        );
        if (f > bestF) [best, bestF] = [p.plotLeft + i, f];
      }
      const from = Math.max(p.plotLeft, best - 30),
        to = Math.min(p.plotLeft + p.plotWidth, best + 30);
      await page.mouse.move(canvas.x + from, y);
      await page.mouse.down();
      await page.mouse.move(canvas.x + to, y, { steps: 5 });
      await page.mouse.up();
      const before = span;
      p = await plot(page);
      assert.ok(p.viewEnd - p.viewStart < before / 5, "the drag zoomed in");
    }
    assert.equal(p.mode, "exact");
    assert.ok(p.extents > 0 && p.extents <= data.exactLimit);
    // Keep dragging around a shared extent until it is wide.
    const r0 = data.regions[0], c0 = cums[0].cum;
    const sharedAt = (k: number) => (c0.state![k] & 1) === 1;
    for (let step = 0; step < 20; step++) {
      const mid = p.plotLeft + p.plotWidth / 2;
      let target = -1, dist = Infinity;
      for (let k = 0; k < c0.pos.length - 1; k++) {
        if (!sharedAt(k)) continue;
        const a = xOf(p, r0.base + c0.pos[k] * r0.pageSize);
        const b = xOf(p, r0.base + c0.pos[k + 1] * r0.pageSize);
        if (b < p.plotLeft || a > p.plotLeft + p.plotWidth) continue;
        if (Math.abs((a + b) / 2 - mid) < dist) [target, dist] = [k, Math.abs((a + b) / 2 - mid)];
      }
      assert.ok(target >= 0, "a shared extent in view");
      const a = xOf(p, r0.base + c0.pos[target] * r0.pageSize);
      const b = xOf(p, r0.base + c0.pos[target + 1] * r0.pageSize);
      if (b - a >= 60) break;
      const centre = Math.min(
        Math.max((a + b) / 2, p.plotLeft + 40),
        p.plotLeft + p.plotWidth - 40,
      );
      await page.mouse.move(canvas.x + centre - 40, y);
      await page.mouse.down();
      await page.mouse.move(canvas.x + centre + 40, y, { steps: 4 });
      await page.mouse.up();
      p = await plot(page);
    }
    assert.equal(p.mode, "exact");
    assert.match(await page.$eval("#space-mode", (e) => e.textContent ?? ""), /^exact extents: /);
    await shot(page, "boot-1t-zoomed", "#space");
    // Every extent at least 12 px wide is drawn in its state's colour, edge at its address.
    const r = data.regions[0];
    const cum = cums[0].cum;
    // A row above the size labels (mid-band) and the ticks of narrow extents (at the foot).
    const yy = p.bandTop + 6;
    let checked = 0, edges = 0;
    for (let k = 0; k < cum.pos.length - 1; k++) {
      const gs = r.base + cum.pos[k] * r.pageSize, ge = r.base + cum.pos[k + 1] * r.pageSize;
      const x0 = xOf(p, gs), x1 = xOf(p, ge);
      if (x1 < p.plotLeft || x0 > p.plotLeft + p.plotWidth) continue;
      const a = Math.max(p.plotLeft, Math.ceil(x0)) + 2,
        b = Math.min(p.plotLeft + p.plotWidth, Math.floor(x1)) - 2;
      if (b - a < 8) continue;
      const want = cum.state![k] & 1 ? rampColor(SHARED_RAMP, 1) : SHARED_RAMP.none;
      const strip = await pixels(page, yy, a, b);
      assert.ok(
        strip.every((c) => near(c, want)),
        `extent ${k} at ${a}..${b}: ${strip.slice(0, 12).map(hex)}`,
      );
      const prevWide = k > 0 && x0 - xOf(p, r.base + cum.pos[k - 1] * r.pageSize) >= 4;
      if (x0 > p.plotLeft + 1 && prevWide) {
        // The white edge between this extent and a wide neighbour, at its address.
        const edge = await pixels(page, yy, Math.round(x0) - 1, Math.round(x0) + 2);
        assert.ok(edge.includes(0xffffff), `edge of extent ${k} at x=${x0}: ${edge.map(hex)}`);
        edges++;
      }
      checked++;
    }
    assert.ok(checked >= 2 && edges >= 1, `${checked} extents and ${edges} edges checked`);
    // A click zooms in 4x around the point.
    const span = p.viewEnd - p.viewStart;
    await page.mouse.click(canvas.x + p.plotLeft + p.plotWidth / 2, y);
    const q = await plot(page);
    assert.ok(
      Math.abs((q.viewEnd - q.viewStart) * 4 - span) < span * 1e-9 ||
        q.viewEnd - q.viewStart < span,
    );
    // "Whole space" goes back.
    await page.click("#zoom-reset");
    const back = await plot(page);
    assert.deepEqual([back.viewStart, back.viewEnd], [0, data.space.end]);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test("hovering shows a tooltip with the GPA range, size, state and IOMMU mappings", async () => {
  const { page, problems, data } = await open("tdx-trace");
  try {
    const p = await plot(page);
    const canvas = (await (await page.$("#space-main"))!.boundingBox())!;
    const y = canvas.y + p.bandTop + p.bandHeight / 2;
    // Over the SWIOTLB pool in ram-below-4g: the column with the most shared pages.
    const cums = regionCums(data);
    const span = p.viewEnd - p.viewStart;
    let best = 0, bestF = -1;
    for (let i = 0; i < p.plotWidth; i++) {
      const f = sharedFraction(
        cums,
        p.viewStart + i / p.plotWidth * span,
        p.viewStart + (i + 1) / p.plotWidth * span,
      );
      if (f > bestF) [best, bestF] = [i, f];
    }
    await page.mouse.move(canvas.x + p.plotLeft + best + 0.5, y);
    await page.waitForSelector("#space-tooltip", { visible: true });
    const text = await page.$eval("#space-tooltip", (e) => e.textContent ?? "");
    assert.match(text, /ram-below-4g/);
    assert.match(text, /0x[0-9a-f]+ – 0x[0-9a-f]+/);
    assert.match(text, /MiB|GiB|KiB/);
    assert.match(text, /state: shared|shared [\d.]+%/);
    assert.match(text, /IOMMU nic0: [\d,]+ mappings? · [\d.]+ [KMG]?i?B mapped/);
    await shot(page, "tdx-trace-tooltip", "#space");
    // Over the hole between the regions.
    const holeX = xOf(p, 0xc0000000);
    await page.mouse.move(canvas.x + holeX, y);
    assert.match(
      await page.$eval("#space-tooltip", (e) => e.textContent ?? ""),
      /hole \(no RAM\)0x80000000 – 0x100000000/,
    );
    await page.mouse.move(canvas.x + 2, canvas.y - 40);
    assert.equal(
      await page.$eval(
        "#space-tooltip",
        (e) => (e as unknown as { style: { display: string } }).style.display,
      ),
      "none",
    );
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

Deno.test({
  name: `browser: close${skip}`,
  ignore: !chromium.path,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await browser?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  },
});
