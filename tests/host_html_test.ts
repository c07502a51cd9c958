// The run's latency and timelines (in the JSON and text reports) and the HTML report as a
// document: self-contained (no network), its data decodes to the store's runs and the IOMMU's
// mappings, its scripts parse, budgets switch to bins, and text is escaped.
import assert from "node:assert/strict";
import { loadHostConfig } from "../src/host/config/load.ts";
import { runSession } from "../src/host/session.ts";
// From the public entry point: a user's own probe needs the sampling rule.
import { parseHostConfig, SAMPLE_EVERY, TIMED_IN_FULL } from "../host.ts";
import { renderTextReport } from "../src/host/report/text.ts";
import { renderHtmlReport } from "../src/host/report/html.ts";
import type { PageData } from "../src/host/report/html_client.ts";
import {
  cumAt,
  cumulativeFromBins,
  cumulativeFromRuns,
  decodeVarints,
  fromBase64,
} from "../src/host/report/density.ts";

/** The JSON data element of an HTML report. */
function pageData(html: string): PageData {
  const m = /<script type="application\/json" id="memstate-data">([^<]*)<\/script>/.exec(html);
  assert.ok(m, "data element");
  return JSON.parse(m[1]);
}

/** Bodies of the executable scripts. */
function scripts(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
}

Deno.test("session: latency of every conversion and timelines end where the report ends", async () => {
  const { report } = await runSession(await loadHostConfig("examples/tdx-16g.json"));
  const lat = report.latency!;
  assert.equal(lat.count, report.conversions.requested);
  assert.equal(lat.buckets.reduce((n, b) => n + b.count, 0), lat.count);
  assert.ok(lat.minUs <= lat.p50Us && lat.p50Us <= lat.p99Us && lat.p99Us <= lat.maxUs);
  const t = report.timeline!;
  assert.ok(t.events.length >= 2 && t.events.length <= 512);
  assert.equal(t.events[0], 0);
  assert.equal(t.events.at(-1), report.events);
  for (let i = 1; i < t.events.length; i++) assert.ok(t.events[i] > t.events[i - 1]);
  for (let i = 1; i < t.timeMs.length; i++) assert.ok(t.timeMs[i] >= t.timeMs[i - 1]);
  assert.deepEqual(t.regions.map((r) => r.name), report.regions.map((r) => r.name));
  t.regions.forEach((r, i) => assert.equal(r.extents.at(-1), report.regions[i].extents));
  const nic = t.devices.find((d) => d.name === "nic0")!;
  assert.equal(nic.kind, "vfio-type1");
  assert.equal(nic.limit, 4194304);
  const plugin = report.plugins.find((p) => p.name === "nic0")!;
  assert.equal(nic.mappings.at(-1), plugin.mappings);
  assert.ok(Math.max(...nic.mappings) <= plugin.peakMappings);
  assert.equal(t.conversionsPerSecond.length, t.events.length);
  const text = renderTextReport(report);
  assert.match(
    text,
    /conversion latency: p50 [\d.]+ [nµm]?s, p99 [\d.]+ [nµm]?s, max [\d.]+ [nµm]?s/,
  ); // Every conversion was timed: no word of sampling.
  assert.match(text, new RegExp(`\\(mean [^,]+, ${lat.count.toLocaleString("en-US")} timed\\)`));
  const html = renderHtmlReport({ report, regions: [], devices: [] });
  assert.doesNotMatch(html, /a sampled conversion counts|standing for/);
});

Deno.test("session: a long run times a sample, each timed conversion counting for those it stands for", async () => {
  // 40,000 conversions: the first 16,384 timed, then one in 32 (latency.ts conversionWeight).
  const config = parseHostConfig({
    name: "long",
    regions: [{ name: "ram", size: "1GiB" }],
    workload: { name: "dma-scatter", params: { count: 40_000 } },
  }, "long.json");
  const { report } = await runSession(config);
  const lat = report.latency!;
  const n = report.conversions.requested;
  assert.equal(n, 40_000);
  const sampled = Math.round((n - TIMED_IN_FULL) / SAMPLE_EVERY);
  assert.ok(Math.abs(lat.count - (TIMED_IN_FULL + sampled)) < 100, `${lat.count} timed`);
  // The weights add up to the run: the later conversions are not undercounted 32 to 1.
  // (within 2%: about 740 of the 23,616 later ones are timed, give or take a few dozen).
  assert.ok(Math.abs(lat.represents - n) / n < 0.02, `represents ${lat.represents}`);
  assert.equal(lat.buckets.reduce((sum, b) => sum + b.count, 0), lat.represents);
  assert.match(
    renderTextReport(report),
    new RegExp(
      `${lat.count.toLocaleString("en-US")} timed, standing for ${
        lat.represents.toLocaleString("en-US")
      }\\)`,
    ),
  );
  const html = renderHtmlReport({ report, regions: [], devices: [] });
  assert.match(html, /standing for [\d,]+ \(a sampled conversion counts/);
});

Deno.test("session: iommufd reports IO page-table pages; a bitmap store is not scanned per sample", async () => {
  const config = await loadHostConfig("examples/tdx-trace.json");
  const { report } = await runSession(config);
  const dev = report.timeline!.devices[0];
  assert.ok(dev.tablePages && dev.tablePages.at(-1)! > 0, "table pages sampled");
  const bitmap = (await runSession(config, { store: "bitmap" })).report.timeline!;
  assert.deepEqual(bitmap.regions, []);
  assert.equal(bitmap.notes.length, 2);
  assert.match(
    bitmap.notes[0],
    /ram-below-4g are not sampled: its bitmap store counts them by scanning/,
  );
});

Deno.test("html: self-contained document whose data decodes to the store's runs and mappings", async () => {
  const result = await runSession(await loadHostConfig("examples/tdx-trace.json"));
  const html = result.html();
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(
    html,
    /Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'/,
  );
  // Nothing is loaded from anywhere: no src or href attributes at all.
  assert.doesNotMatch(html, /\s(src|href)\s*=/i);
  assert.match(html, /Copyright \(c\) 2022 Leon Sorokin/);
  const data = pageData(html);
  assert.deepEqual(data.regions.map((r) => r.name), ["ram-below-4g", "ram-above-4g"]);
  assert.equal(data.space.end, 0x480000000);
  for (const r of data.regions) {
    assert.equal(r.mode, "exact");
    const cum = cumulativeFromRuns(decodeVarints(fromBase64(r.runs!)), 1, 2, r.implied);
    const line = result.report.regions.find((g) => g.name === r.name)!;
    assert.equal(cumAt(cum, 1, r.pages) * r.pageSize, line.sharedBytes);
    assert.equal(cumAt(cum, 0, r.pages), r.pages);
    assert.equal(r.extents, line.extents);
  }
  const dev = data.devices[0];
  assert.equal(dev.mode, "exact");
  const rec = decodeVarints(fromBase64(dev.records!));
  let count = 0, pages = 0;
  for (let i = 0; i < rec.length; i += 3) {
    count += rec[i + 2];
    pages += rec[i + 1] * rec[i + 2];
  }
  const nic = result.report.plugins.find((p) => p.name === "nic0")!;
  assert.equal(count, nic.mappings);
  assert.equal(pages * 4096, nic.mappedBytes);
  // The report's other sections are there.
  for (const id of ["space", "devices", "timelines", "latency", "tables"]) {
    assert.ok(html.includes(`id="${id}"`), id);
  }
  assert.ok(data.timeline && data.timeline.events.length > 1);
});

Deno.test("html: the inline scripts parse", async () => {
  const { html } = await runSession(await loadHostConfig("examples/tdx-trace.json"));
  const bodies = scripts(html());
  assert.equal(bodies.length, 2);
  for (const body of bodies) {
    assert.doesNotThrow(() => new Function(body), SyntaxError);
    assert.doesNotMatch(body, /<\/script/i);
  }
  assert.match(bodies[0], /uPlot/);
  assert.match(bodies[1], /function reportClient\(/);
  assert.match(bodies[1], /function cumulativeFromRuns\(/);
});

Deno.test("html: over budget, runs and mappings go as bins that keep the totals", async () => {
  const result = await runSession(await loadHostConfig("examples/tdx-16g.json"));
  const regions = result.host.regions.map((r) => ({
    name: r.name,
    base: r.base,
    size: r.size,
    pageSize: r.pageSize,
    runs: r.store.runs(),
    implied: r.impliedBits,
  }));
  const hw = result.host.devices.get("nic0")!.container.hardware as unknown as {
    mappings(): { iova: number; size: number }[];
  };
  const html = renderHtmlReport(
    {
      report: result.report,
      regions,
      devices: [{ name: "nic0", kind: "vfio-type1", mappings: hw.mappings() }],
    },
    { runBudget: 10, mappingBudget: 10, bins: 1000 },
  );
  const data = pageData(html);
  for (const r of data.regions) {
    assert.equal(r.mode, "binned");
    const cum = cumulativeFromBins(decodeVarints(fromBase64(r.bins!)), r.binPages!, r.pages);
    const line = result.report.regions.find((g) => g.name === r.name)!;
    assert.equal(cumAt(cum, 1, r.pages) * r.pageSize, line.sharedBytes);
  }
  const dev = data.devices[0];
  assert.equal(dev.mode, "binned");
  const bins = decodeVarints(fromBase64(dev.bins!));
  let pages = 0, starts = 0;
  for (let i = 0; i < bins.length; i += 2) {
    pages += bins[i];
    starts += bins[i + 1];
  }
  const nic = result.report.plugins.find((p) => p.name === "nic0")!;
  assert.equal(starts, nic.mappings);
  assert.equal(pages * 4096, nic.mappedBytes);
  assert.equal(dev.limit, 4194304);
  assert.match(html, /sent as counts per bin/);
});

Deno.test("html: adjacent equal mappings coalesce into one record", async () => {
  const { report } = await runSession(await loadHostConfig("examples/tdx-trace.json"));
  const mappings = Array.from(
    { length: 1000 },
    (_, i) => ({ iova: 0x100000 + i * 4096, size: 4096 }),
  );
  mappings.push({ iova: 0x1000000, size: 2 ** 21 });
  const html = renderHtmlReport({
    report,
    regions: [{
      name: "r",
      base: 0,
      size: 2 ** 30,
      pageSize: 4096,
      runs: [{ start: 0, end: 262144, state: 1 }],
    }],
    devices: [{ name: "d", kind: "vfio-type1", mappings }],
  });
  const rec = [...decodeVarints(fromBase64(pageData(html).devices[0].records!))];
  assert.deepEqual(rec, [0x100, 1, 1000, 0x1000 - 0x100 - 1000, 512, 1]);
});

Deno.test("html: names are escaped in the page and in its data", async () => {
  const { report } = await runSession(await loadHostConfig("examples/tdx-trace.json"));
  const html = renderHtmlReport({
    report: { ...report, name: "</script><b>x</b>" },
    regions: [{
      name: "ram</script>",
      base: 0,
      size: 2 ** 20,
      pageSize: 4096,
      runs: [{ start: 0, end: 256, state: 0 }],
    }],
    devices: [],
  });
  assert.doesNotMatch(html, /<b>x<\/b>/);
  assert.ok(html.includes("&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;"));
  assert.equal(pageData(html).regions[0].name, "ram</script>");
  assert.equal(scripts(html).length, 2);
});
