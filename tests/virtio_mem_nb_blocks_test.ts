// A virtio-mem request names at most 65,535 blocks (le16 nb_blocks): a bigger trace event or
// state load is several requests, and a direct call with more blocks answers ERROR.
import assert from "node:assert/strict";
import { Region } from "../src/bus/mod.ts";
import { buildHost } from "../src/host/build.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { runEvents } from "../src/host/event_runner.ts";
import { loadHostState, saveHostState } from "../src/host/state_file.ts";
import { VIRTIO_MEM_MAX_NB_BLOCKS, virtioMem } from "../src/plugins/mod.ts";

const MiB = 2 ** 20, GiB = 2 ** 30;

Deno.test("virtio-mem: a request of more than 65535 blocks answers ERROR, nb_blocks being le16 (hw/virtio/virtio-mem.c virtio_mem_plug_request / virtio_mem_state_request: le16_to_cpu(nb_blocks))", () => {
  // Rule: struct virtio_mem_req_plug / _unplug / _state carry nb_blocks as a le16, so no
  // request names 65536 blocks; memstate answers such a call as an invalid range (ERROR).
  assert.equal(VIRTIO_MEM_MAX_NB_BLOCKS, 65535);
  const region = new Region({ name: "vmem", size: 128 * GiB, base: 2 ** 40 });
  const vmem = virtioMem({ region, blockSize: MiB, requestedSize: 100 * GiB });
  const base = region.base;
  assert.deepEqual(vmem.check(base, 65536, true), { response: "ERROR", rule: "nb-blocks" });
  assert.equal(vmem.plug(base, 65536), "ERROR");
  assert.deepEqual(vmem.state(base, 65536), { response: "ERROR" });
  assert.equal(vmem.pluggedSize, 0);
  assert.equal(vmem.plug(base, 65535), "ACK");
  assert.equal(vmem.unplug(base, 65536), "ERROR");
  assert.equal(vmem.pluggedSize, 65535 * MiB);
});

Deno.test("virtio-mem: a trace event or a state load of more than 65535 blocks is made in requests of at most 65535 blocks, as a guest driver would (le16 nb_blocks: hw/virtio/virtio-mem.c virtio_mem_plug_request)", () => {
  // Rule: nb_blocks is a le16, so the host's event runner and state loader, which issue the
  // requests a guest would, cut a bigger range into requests of at most 65535 blocks.
  const config = parseHostConfig({
    name: "big",
    description: "one virtio-mem device of 128 GiB in 1 MiB blocks",
    regions: [{ name: "hotplug", size: "128GiB", base: "0x10000000000" }],
    devices: [{
      type: "virtio-mem",
      name: "vmem0",
      region: "hotplug",
      blockSize: "1MiB",
      requestedSize: "128GiB",
    }],
    workload: { name: "boot" },
  }, "big.json");
  const blocks = 2 * 65535 + 1;
  using a = buildHost(config);
  const result = runEvents(a, [{ op: "plug", gpa: 2 ** 40, size: blocks * MiB, line: 1 }]);
  assert.equal(result.requests.ACK, 3, "65535 + 65535 + 1");
  const vmem = a.virtioMem.get("vmem0")!;
  assert.equal(vmem.pluggedSize, blocks * MiB);
  assert.equal(vmem.stats().calls["plug.ACK"], 3);
  // An empty event (the host API takes one; the trace reader refuses it) is one request,
  // which the device answers ERROR.
  const empty = runEvents(a, [{ op: "unplug", gpa: 2 ** 40, size: 0, line: 2 }]);
  assert.equal(empty.requests.ERROR, 1);
  using b = buildHost(config);
  loadHostState(b, saveHostState(a));
  const loaded = b.virtioMem.get("vmem0")!;
  assert.equal(loaded.pluggedSize, blocks * MiB);
  assert.equal(loaded.stats().calls["plug.ACK"], 3, "the load's requests: 3");
});
