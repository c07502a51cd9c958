// The package as people import it: the entry points deno.json exports, what
// each one loads, and importing the library by path from another project.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = fromFileUrl(new URL("..", import.meta.url));
const ENTRIES: Record<string, string> = {
  ".": "./mod.ts",
  "./sim": "./sim.ts",
  "./linux": "./linux.ts",
  "./host": "./host.ts",
  "./cli": "./cli.ts",
};

/** The local files and npm packages `entry` loads (its static module graph). */
async function graph(entry: string): Promise<{ files: string[]; npm: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const specifiers = info.modules.map((m) => m.specifier);
  return {
    files: specifiers.filter((s) => s.startsWith("file:")).map((s) =>
      fromFileUrl(s).slice(ROOT.length)
    ),
    npm: specifiers.filter((s) => s.startsWith("npm:")).map((s) => s.replace(/^npm:\/?/, "")),
  };
}

Deno.test("package: deno.json exports the main entry point and the /sim, /linux, /host, /cli subpaths", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  assert.deepEqual(config.exports, ENTRIES);
  for (const file of Object.values(ENTRIES)) await Deno.stat(join(ROOT, file));
});

Deno.test("package: importing the store loads neither zod nor FFI code nor the host runner", async () => {
  const main = await graph("mod.ts");
  assert.deepEqual(main.npm.map((p) => p.split("@")[0]), ["sorted-btree"]);
  for (const f of main.files) {
    assert.ok(!f.startsWith("src/hw/linux/"), `mod.ts loads the Linux backend: ${f}`);
    assert.ok(!f.startsWith("src/host/"), `mod.ts loads the host runner: ${f}`);
  }
  const sim = await graph("sim.ts");
  assert.ok(!sim.npm.some((p) => p.startsWith("zod")), "sim.ts loads zod");
  assert.ok(!sim.files.some((f) => f.startsWith("src/hw/linux/")), "sim.ts loads FFI code");
  const host = await graph("host.ts");
  assert.ok(host.npm.some((p) => p.startsWith("zod")), "the host runner validates with zod");
});

Deno.test("package: source files import npm packages by npm: specifier (no bare names)", async () => {
  // A bare name ("zod") resolves through this repository's import map only, so
  // a project importing mod.ts by path could not load it.
  const bad: string[] = [];
  const check = async (path: string) => {
    const text = await Deno.readTextFile(join(ROOT, path));
    for (const m of text.matchAll(/^\s*(?:import|export)[^"']*?from\s+["']([^"']+)["']/gm)) {
      const spec = m[1];
      if (!/^(\.{1,2}\/|npm:|node:|jsr:)/.test(spec)) bad.push(`${path}: ${spec}`);
    }
  };
  for (const file of Object.values(ENTRIES)) await check(file.slice(2));
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) await check(path);
    }
  };
  await walk("src");
  assert.deepEqual(bad, []);
});

Deno.test("package: another project imports the library by path, every entry point", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memstate_import_" });
  try {
    await Deno.writeTextFile(join(dir, "deno.json"), "{}\n");
    const url = (file: string) => new URL(file, `file://${ROOT}`).href;
    await Deno.writeTextFile(
      join(dir, "main.ts"),
      `import { definePlugin, RangeTreeStore, Region } from "${url("mod.ts")}";
import { SimKvm } from "${url("sim.ts")}";
import { parseHostConfig } from "${url("host.ts")}";
import { probeKvm } from "${url("linux.ts")}";
const store = new RangeTreeStore(1024, { bits: 1 });
store.update(0, 16, 1, 0);
const region = new Region({ name: "ram", size: 2 ** 20 });
region.convert(0, 4096, "shared");
const config = parseHostConfig(
  { name: "x", regions: [{ name: "ram", size: "1MiB" }], workload: { name: "boot" } },
  "x.json",
);
console.log(store.runCount, region.stateAt(0), config.regions[0].size, typeof SimKvm,
  typeof probeKvm, typeof definePlugin);
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-read", "main.ts"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, stderr);
    assert.equal(
      new TextDecoder().decode(out.stdout).trim(),
      "2 3 1048576 function function function",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
