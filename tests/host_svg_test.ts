// State-map SVG: well-formed standalone XML, legend and scale present, text escaped, thin
// runs visible, and a bounded number of elements however many runs there are.
import assert from "node:assert/strict";
import { renderStateSvg, type SvgRun } from "../src/host/report/svg.ts";

const GiB = 2 ** 30;
const SHARED = 1, PLUGGED = 2;
const COLORS = {
  sharedPlugged: "#f28e2b",
  privatePlugged: "#4e79a7",
  privateUnplugged: "#c5d0dc",
};

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

Deno.test("renders a standalone, well-formed SVG with legend, labels and a byte scale", () => {
  const svg = renderStateSvg({
    title: "tdx-16g",
    regions: [
      {
        name: "ram-below-4g",
        base: 0,
        size: 2 * GiB,
        pageSize: 4096,
        runs: [
          { start: 0, end: 1000, state: PLUGGED },
          { start: 1000, end: 2000, state: SHARED | PLUGGED },
          { start: 2000, end: 524288, state: PLUGGED },
        ],
      },
      {
        name: "ram-above-4g",
        base: 4 * GiB,
        size: 14 * GiB,
        pageSize: 4096,
        runs: [{ start: 0, end: 14 * 262144, state: 0 }],
      },
    ],
  });
  const names = checkWellFormed(svg);
  assert.equal(names[0], "svg");
  assert.match(
    svg,
    /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="960" height="\d+" viewBox="0 0 960 \d+"/,
  );
  for (
    const label of [
      "shared + plugged",
      "shared + unplugged",
      "private + unplugged",
      "private + plugged",
    ]
  ) {
    assert.ok(svg.includes(`>${label}</text>`), `legend entry ${label}`);
  }
  assert.ok(svg.includes(">ram-below-4g</tspan>"));
  assert.ok(svg.includes("2 GiB at 0x0"));
  assert.ok(svg.includes("14 GiB at 0x100000000"));
  assert.ok(svg.includes("3 extents"));
  assert.ok(svg.includes("1 extent "));
  for (const tick of [">0 B<", ">1 GiB<", ">2 GiB<", ">8 GiB<", ">14 GiB<"]) {
    assert.ok(svg.includes(tick), `scale label ${tick}`);
  }
  assert.ok(svg.includes(`fill="${COLORS.sharedPlugged}"`));
  assert.ok(svg.includes(`fill="${COLORS.privateUnplugged}"`));
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

Deno.test("one shared page in 16 GiB is still visible", () => {
  const pages = 16 * 262144;
  const svg = renderStateSvg({
    title: "needle",
    regions: [{
      name: "ram0",
      base: 0,
      size: 16 * GiB,
      pageSize: 4096,
      runs: [
        { start: 0, end: 1234567, state: PLUGGED },
        { start: 1234567, end: 1234568, state: SHARED | PLUGGED },
        { start: 1234568, end: pages, state: PLUGGED },
      ],
    }],
  });
  checkWellFormed(svg);
  const shared = [...svg.matchAll(new RegExp(`<rect [^>]*fill="${COLORS.sharedPlugged}"/>`, "g"))]
    // The legend swatch has a stroke; band segments do not.
    .filter((m) => !m[0].includes("stroke"));
  assert.equal(shared.length, 1);
  const width = Number(/width="([\d.]+)"/.exec(shared[0][0])![1]);
  const height = Number(/height="([\d.]+)"/.exec(shared[0][0])![1]);
  assert.ok(width >= 1 && height >= 4, `visible: ${width}x${height}`);
});

Deno.test("element count stays bounded with 100k runs (and honours maxRects)", () => {
  const runs: SvgRun[] = [];
  for (let i = 0; i < 100_000; i++) {
    runs.push({ start: i * 3, end: i * 3 + 3, state: i % 4 });
  }
  const region = { name: "churn", base: 0, size: 300_000 * 4096, pageSize: 4096 };
  const svg = renderStateSvg({ title: "100k runs", regions: [{ ...region, runs }] });
  checkWellFormed(svg);
  assert.ok(count(svg, /<rect /g) <= 4000 + 10, `${count(svg, /<rect /g)} rects`);
  assert.ok(svg.length < 1_000_000, `${svg.length} bytes`);

  const small = renderStateSvg(
    { title: "budget", regions: [{ ...region, runs }, { ...region, name: "again", runs }] },
    { maxRects: 400 },
  );
  checkWellFormed(small);
  assert.ok(count(small, /<rect /g) <= 400 + 10, `${count(small, /<rect /g)} rects`);
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
  assert.ok(count(svg, /<rect /g) <= 4000 + 10);
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
