// State-map SVG: well-formed standalone XML, the density colour scale and hex GPA axes,
// regions to scale at their addresses, text escaped, one shared page in 16 GiB visible, more
// shared pages drawn stronger, and a bounded number of elements however many runs there are.
import assert from "node:assert/strict";
import { renderStateSvg, type SvgRun } from "../src/host/report/svg.ts";
import { cssColor, luminance, rampColor, SHARED_RAMP } from "../src/host/report/density.ts";

const GiB = 2 ** 30;
const SHARED = 1, PLUGGED = 2;
const NONE = cssColor(SHARED_RAMP.none);

/** Checks tags balance and that text holds no raw `<` or bare `&`; returns the tag names. */
function checkWellFormed(svg: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = svg.indexOf("<");
  assert.equal(svg.slice(0, i).trim(), "", "nothing before the root element");
  while (i < svg.length) {
    const next = svg.indexOf("<", i);
    const text = svg.slice(i, next === -1 ? svg.length : next);
    assert.doesNotMatch(text, /&(?!(amp|lt|gt|quot|apos);)/, `bare & in ${JSON.stringify(text)}`);
    assert.doesNotMatch(text, />/, `stray > in ${JSON.stringify(text)}`);
    if (next === -1) break;
    tag.lastIndex = next;
    const match = tag.exec(svg);
    assert.ok(match, `malformed tag at ${next}: ${svg.slice(next, next + 60)}`);
    const [, closing, name, attrs, selfClosing] = match;
    for (const value of attrs.matchAll(/="([^"]*)"/g)) {
      assert.doesNotMatch(value[1], /&(?!(amp|lt|gt|quot|apos);)/, "bare & in an attribute");
    }
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else {
      names.push(name);
      if (!selfClosing) stack.push(name);
    }
    if (stack.length === 0) {
      assert.equal(svg.slice(tag.lastIndex).trim(), "", "nothing after the root element");
      return names;
    }
    i = tag.lastIndex;
  }
  assert.fail(`unclosed elements: ${stack.join(", ")}`);
}

const count = (svg: string, re: RegExp) => (svg.match(re) ?? []).length;

/** The filled rectangles of height `h` (one band), as numbers. */
function bandRects(svg: string, h: number): { x: number; y: number; w: number; fill: string }[] {
  const out = [];
  for (
    const m of svg.matchAll(
      /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="(#[0-9a-f]{6})"\/>/g,
    )
  ) {
    if (Number(m[4]) !== h) continue;
    out.push({ x: Number(m[1]), y: Number(m[2]), w: Number(m[3]), fill: m[5] });
  }
  return out;
}

/** The fill of band `y` at pixel column `x`. */
function fillAt(rects: ReturnType<typeof bandRects>, y: number, x: number): string | undefined {
  return rects.find((r) => r.y === y && r.x <= x && x < r.x + r.w)?.fill;
}

const TDX = [
  {
    name: "ram-below-4g",
    base: 0,
    size: 2 * GiB,
    pageSize: 4096,
    implied: PLUGGED,
    runs: [
      { start: 0, end: 1000, state: 0 },
      { start: 1000, end: 2000, state: SHARED },
      { start: 2000, end: 524288, state: 0 },
    ],
  },
  {
    name: "ram-above-4g",
    base: 4 * GiB,
    size: 14 * GiB,
    pageSize: 4096,
    implied: PLUGGED,
    runs: [{ start: 0, end: 14 * 262144, state: 0 }],
  },
];

Deno.test("renders a standalone, well-formed SVG with the colour scale, labels and hex GPA axes", () => {
  const svg = renderStateSvg({ title: "tdx-16g", regions: TDX });
  const names = checkWellFormed(svg);
  assert.equal(names[0], "svg");
  assert.match(
    svg,
    /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="960" height="\d+" viewBox="0 0 960 \d+"/,
  );
  assert.ok(svg.includes(">shared pages per pixel column</text>"));
  for (const tick of [">≤0.001%<", ">0.01%<", ">1%<", ">50%<", ">99.9%<"]) {
    assert.ok(svg.includes(tick), `legend tick ${tick}`);
  }
  assert.ok(!svg.includes("plugged pages"), "no plugged lane without virtio-mem");
  assert.ok(svg.includes(">ram-below-4g</tspan>"));
  assert.ok(svg.includes("2 GiB at 0x0 – 0x80000000"));
  assert.ok(svg.includes("14 GiB at 0x100000000 – 0x480000000"));
  assert.ok(svg.includes("3 extents"));
  assert.ok(svg.includes("1 extent "));
  assert.ok(svg.includes("0x0 – 0x480000000 (18 GiB), regions to scale"));
  for (const tick of [">0x0<", ">0x80000000<", ">0x100000000<", ">0x480000000<"]) {
    assert.ok(svg.includes(tick), `axis label ${tick}`);
  }
  // The column holding the 1000 shared pages is coloured by their share; the rest is "none".
  const rects = bandRects(svg, 26);
  const fills = new Set(rects.map((r) => r.fill));
  assert.ok(fills.has(NONE));
  assert.ok([...fills].some((f) => f !== NONE), "a shared column");
});

Deno.test("the address space puts every region at its GPA, to scale, with the hole between", () => {
  const svg = renderStateSvg({ title: "layout", regions: TDX });
  const outlines = [
    ...svg.matchAll(
      /<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="20" fill="none"/g,
    ),
  ].map((m) => [Number(m[1]), Number(m[2])]);
  // 920 px for 18 GiB: 2 GiB at 0, 14 GiB at 4 GiB.
  assert.equal(outlines.length, 2);
  assert.ok(Math.abs(outlines[0][0] - 20) < 0.01 && Math.abs(outlines[0][1] - 920 * 2 / 18) < 0.01);
  assert.ok(Math.abs(outlines[1][0] - (20 + 920 * 4 / 18)) < 0.01);
  assert.ok(Math.abs(outlines[1][1] - 920 * 14 / 18) < 0.01);
  // The hole shows the hatch pattern: no coloured rectangle of the band covers it.
  const space = bandRects(svg, 20);
  const holeX = 20 + 920 * 3 / 18;
  assert.ok(space.length > 0);
  assert.equal(fillAt(space, space[0].y, holeX), undefined);
  assert.ok(svg.includes('fill="url(#hole)"'));
});

Deno.test("text is escaped", () => {
  const svg = renderStateSvg({
    title: `<script>alert("x")</script> & 'more'`,
    regions: [{
      name: "a<b>&c",
      base: 0,
      size: 4096 * 4,
      pageSize: 4096,
      runs: [{ start: 0, end: 4, state: PLUGGED }],
    }],
  });
  checkWellFormed(svg);
  assert.ok(!svg.includes("<script>"));
  assert.ok(
    svg.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;more&apos;"),
  );
  assert.ok(svg.includes(">a&lt;b&gt;&amp;c</tspan>"));
});

Deno.test("one shared page in 16 GiB is still visible, in the colour of its share", () => {
  const pages = 16 * 262144;
  const svg = renderStateSvg({
    title: "needle",
    regions: [{
      name: "ram0",
      base: 0,
      size: 16 * GiB,
      pageSize: 4096,
      implied: PLUGGED,
      runs: [
        { start: 0, end: 1234567, state: 0 },
        { start: 1234567, end: 1234568, state: SHARED },
        { start: 1234568, end: pages, state: 0 },
      ],
    }],
  });
  checkWellFormed(svg);
  const band = bandRects(svg, 26);
  const marked = band.filter((r) => r.fill !== NONE);
  assert.equal(marked.length, 1);
  assert.ok(marked[0].w >= 1);
  // 920 columns of 4559.3 pages: the page is 1/4559.3 of its column.
  assert.equal(marked[0].fill, cssColor(rampColor(SHARED_RAMP, 1 / (pages / 920))));
  assert.ok(luminance(parseInt(marked[0].fill.slice(1), 16)) < luminance(SHARED_RAMP.none));
});

Deno.test("a column with more shared pages is drawn with the stronger colour", () => {
  // width 320: 280 columns of 100,000 pages each.
  const per = 100_000;
  const shares = [[10, 4], [20, 1_000], [30, 50_000], [40, 99_000]] as const;
  const runs: SvgRun[] = [];
  let at = 0;
  for (const [col, shared] of shares) {
    const s = col * per;
    runs.push({ start: at, end: s, state: 0 }, { start: s, end: s + shared, state: SHARED });
    at = s + shared;
  }
  runs.push({ start: at, end: 280 * per, state: 0 });
  const svg = renderStateSvg({
    title: "shares",
    regions: [{
      name: "r",
      base: 0,
      size: 280 * per * 4096,
      pageSize: 4096,
      implied: PLUGGED,
      runs,
    }],
  }, { width: 320 });
  checkWellFormed(svg);
  const band = bandRects(svg, 26);
  const y = band[0].y;
  const lum = shares.map(([col]) => {
    const fill = fillAt(band, y, 20 + col + 0.5)!;
    return luminance(parseInt(fill.slice(1), 16));
  });
  // 0.004% < 1% < 50% < 99%: strictly darker, and visibly apart.
  for (let i = 1; i < lum.length; i++) {
    assert.ok(lum[i] < lum[i - 1] - 0.03, `column ${shares[i][0]}: ${lum}`);
  }
  assert.ok(lum[0] < luminance(SHARED_RAMP.none));
});

Deno.test("a plugged lane appears where virtio-mem decides PLUGGED", () => {
  const svg = renderStateSvg({
    title: "virtio",
    regions: [{
      name: "hotplug",
      base: 4 * GiB,
      size: GiB,
      pageSize: 4096,
      runs: [{ start: 0, end: 1000, state: PLUGGED }, { start: 1000, end: 262144, state: 0 }],
    }],
  });
  checkWellFormed(svg);
  assert.ok(svg.includes(">plugged pages (virtio-mem)</text>"));
  assert.ok(bandRects(svg, 8).length >= 2, "lane columns");
});

Deno.test("element count stays bounded with 100k runs (and honours maxRects)", () => {
  const runs: SvgRun[] = [];
  for (let i = 0; i < 100_000; i++) {
    runs.push({ start: i * 3, end: i * 3 + 3, state: i % 4 });
  }
  const region = { name: "churn", base: 0, size: 300_000 * 4096, pageSize: 4096 };
  const svg = renderStateSvg({ title: "100k runs", regions: [{ ...region, runs }] });
  checkWellFormed(svg);
  assert.ok(count(svg, /<rect /g) <= 4000 + 40, `${count(svg, /<rect /g)} rects`);
  assert.ok(svg.length < 1_000_000, `${svg.length} bytes`);

  const small = renderStateSvg(
    {
      title: "budget",
      regions: [{ ...region, runs }, { ...region, base: region.size, name: "again", runs }],
    },
    { maxRects: 400 },
  );
  checkWellFormed(small);
  assert.ok(count(small, /<rect /g) <= 400 + 40, `${count(small, /<rect /g)} rects`);
});

Deno.test("a lazily generated million runs renders without materializing them", () => {
  function* runs(): Generator<SvgRun> {
    for (let i = 0; i < 1_000_000; i++) yield { start: i, end: i + 1, state: i & 1 ? 3 : 2 };
  }
  const svg = renderStateSvg({
    title: "1M runs",
    regions: [{ name: "r", base: 0, size: 1_000_000 * 4096, pageSize: 4096, runs: runs() }],
  }, { width: 640 });
  checkWellFormed(svg);
  assert.match(svg, /viewBox="0 0 640 /);
  assert.ok(svg.includes("1,000,000 extents"));
  assert.ok(svg.includes("50% shared"));
  assert.ok(count(svg, /<rect /g) <= 4000 + 40);
});

Deno.test("bad geometry or runs outside the region throw, naming the region", () => {
  const base = { name: "r", base: 0, pageSize: 4096 };
  assert.throws(
    () => renderStateSvg({ title: "t", regions: [{ ...base, size: 1000, runs: [] }] }),
    /size of "r" must be a positive multiple of 4096, got 1000/,
  );
  assert.throws(
    () =>
      renderStateSvg({
        title: "t",
        regions: [{ ...base, size: 4096 * 4, runs: [{ start: 2, end: 5, state: 0 }] }],
      }),
    /run \[2, 5\) of region "r" must lie inside \[0, 4\)/,
  );
  assert.throws(
    () =>
      renderStateSvg({
        title: "t",
        regions: [{ ...base, size: 4096 * 4, runs: [{ start: 2, end: 2, state: 0 }] }],
      }),
    /run \[2, 2\)/,
  );
});

Deno.test("the well-formedness check itself rejects broken documents", () => {
  assert.throws(() => checkWellFormed("<svg><g></svg>"));
  assert.throws(() => checkWellFormed("<svg><text>a < b</text></svg>"));
  assert.throws(() => checkWellFormed("<svg><text>a & b</text></svg>"));
  assert.throws(() => checkWellFormed("<svg><g>"));
  assert.deepEqual(checkWellFormed('<svg a="1"><g><rect x="0"/></g></svg>\n'), [
    "svg",
    "g",
    "rect",
  ]);
});
