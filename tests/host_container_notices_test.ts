// Devices QEMU would put in one container: the report says where memstate counts them apart.
import assert from "node:assert/strict";
import { separateContainerNotices } from "../src/host/container_notices.ts";
import type { IommufdDeviceConfig, Type1DeviceConfig } from "../src/host/config/schema.ts";
import { loadHostConfig, runSession } from "../src/host/mod.ts";

const type1 = (name: string, regions = ["ram"]): Type1DeviceConfig => ({
  type: "type1",
  name,
  regions,
  dmaEntryLimit: 65535,
});
const iommufd = (name: string, regions = ["ram"]): IommufdDeviceConfig => ({
  type: "iommufd",
  name,
  regions,
});

Deno.test("two type1 devices attached at the same time: QEMU shares one container (hw/vfio/container.c vfio_container_connect), whatever regions each follows here, so the report says each here is its own", () => {
  const [notice, ...rest] = separateContainerNotices([
    type1("gpu0", ["low", "high"]),
    type1("gpu1", ["high"]),
  ]);
  assert.deepEqual(rest, []);
  assert.match(notice, /^type1 devices gpu0 and gpu1 are attached at the same time: /);
  assert.match(notice, /one VFIO container \(hw\/vfio\/container\.c vfio_container_connect\)/);
  assert.match(notice, /here each is a container of its own/);
});

Deno.test("iommufd devices on one iommufd object share an IOAS (hw/vfio/iommufd.c iommufd_cdev_attach); three names are listed", () => {
  const notices = separateContainerNotices([iommufd("a"), iommufd("b"), iommufd("c")]);
  assert.equal(notices.length, 1);
  assert.match(notices[0], /^iommufd devices a, b and c are attached at the same time: /);
  assert.match(notices[0], /here each is an IOAS of its own/);
});

Deno.test("no notice for one device per kind, for different kinds, or for devices whose attached stretches never meet", () => {
  assert.deepEqual(separateContainerNotices([type1("nic0"), iommufd("gpu0")]), []);
  const early = { ...type1("a"), detachAt: 100 };
  const late = { ...type1("b"), attachAt: 100 };
  assert.deepEqual(separateContainerNotices([early, late]), []);
  assert.equal(separateContainerNotices([early, { ...late, attachAt: 99 }]).length, 1);
  assert.deepEqual(
    separateContainerNotices([
      {
        type: "virtio-mem",
        name: "vm0",
        region: "ram",
        blockSize: 2 ** 21,
        requestedSize: 0,
        offset: 0,
        size: 2 ** 30,
      },
      type1("nic0"),
    ]),
    [],
  );
});

Deno.test("devices linked by overlapping stretches form one group; groups that never meet get a notice each", () => {
  const notices = separateContainerNotices([
    { ...type1("a"), detachAt: 10 },
    { ...type1("b"), attachAt: 5, detachAt: 20 },
    { ...type1("c"), attachAt: 50 },
    { ...type1("d"), attachAt: 60 },
  ]);
  assert.equal(notices.length, 2);
  assert.match(notices[0], /^type1 devices a and b are attached/);
  assert.match(notices[1], /^type1 devices c and d are attached/);
});

Deno.test("the report's notices carry it: examples/hotplug.json's two iommufd devices", async () => {
  const { report } = await runSession(await loadHostConfig("examples/hotplug.json"));
  const notices = report.notices.filter((n) => n.startsWith("iommufd devices"));
  assert.equal(notices.length, 1);
  assert.match(notices[0], /^iommufd devices accel0 and late0 are attached at the same time/);
});
