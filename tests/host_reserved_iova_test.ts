// A region a DMA device follows must stay clear of the IOVA the host's IOMMU reserves: the
// interrupt window on both vendors (intel_iommu_get_resv_regions, amd_iommu_get_resv_regions) and
// AMD's HyperTransport range below 1 TiB; type1 and iommufd refuse maps there (EINVAL).
import assert from "node:assert/strict";
import { ConfigError, parseHostConfig } from "../src/host/mod.ts";
import { reservedIova } from "../src/settings/iommu.ts";

/** The loader's one-line problems for these regions and devices (none: []). */
function problems(iommu: string, regions: unknown[], devices: unknown[]): string[] {
  try {
    parseHostConfig({ name: "x", iommu, regions, devices, workload: { name: "boot" } }, "x.json");
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.message.split("\n");
  }
}

const nic = [{ type: "type1", name: "nic0" }];

Deno.test("reserved IOVA: the interrupt window 0xfee00000-0xfeefffff on both vendors, AMD's HyperTransport range 0xfd00000000-0xffffffffff on AMD only", () => {
  assert.deepEqual(reservedIova("intel-vt-d").map((r) => [r.start, r.end]), [
    [0xfee0_0000, 0xfef0_0000],
  ]);
  assert.deepEqual(reservedIova("amd-v1").map((r) => [r.start, r.end]), [
    [0xfee0_0000, 0xfef0_0000],
    [0xfd_0000_0000, 0x100_0000_0000],
  ]);
  assert.match(reservedIova("amd-v1")[1].source, /amd_iommu_get_resv_regions/);
});

Deno.test("a region a DMA device follows may not overlap the interrupt window: a one-line error naming the region, the range, the source and the device", () => {
  const over = [{ name: "ram", size: "512MiB", base: "0xe0000000" }];
  for (const iommu of ["intel-vt-d", "amd-v1"]) {
    const [line, ...rest] = problems(iommu, over, nic);
    assert.deepEqual(rest, []);
    assert.match(
      line,
      /^x\.json: regions\[0\]: \[0xe0000000, 0x100000000\) overlaps the interrupt \(MSI\) window \[0xfee00000, 0xfef00000\), which the .* IOMMU reserves \(drivers\/iommu\/.*_get_resv_regions\), so DMA device "nic0" could not map it; end the region at or below 0xfee00000, as QEMU's RAM below 4 GiB does$/,
    );
  }
  // Up to the window's first byte, or with no DMA device following the region: accepted.
  assert.deepEqual(problems("intel-vt-d", [{ name: "ram", size: "0xfee00000" }], nic), []);
  assert.deepEqual(problems("intel-vt-d", over, []), []);
  assert.deepEqual(
    problems("intel-vt-d", [...over, { name: "hi", size: "1GiB", base: "0x100000000" }], [
      { type: "iommufd", name: "gpu0", region: "hi" },
    ]),
    [],
  );
});

Deno.test("AMD: RAM reaching the HyperTransport range is refused for DMA (QEMU moves it to 1 TiB: pc_memory_init); Intel hosts map it", () => {
  const big = [{ name: "hi", size: "1020GiB", base: "0x100000000" }];
  const [line] = problems("amd-v1", big, nic);
  assert.match(
    line,
    /regions\[0\]: .* overlaps the HyperTransport range \[0xfd00000000, 0x10000000000\)/,
  );
  assert.match(
    line,
    /start it at 0x10000000000 \(1 TiB\), as QEMU does on AMD \(hw\/i386\/pc\.c pc_memory_init\)$/,
  );
  assert.deepEqual(problems("intel-vt-d", big, nic), []);
  assert.deepEqual(
    problems("amd-v1", [{ name: "hi", size: "1020GiB", base: "0x10000000000" }], nic),
    [],
  );
});
