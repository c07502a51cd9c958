// The real backend's capability probe against what the kernel itself answers,
// and the permission story: importing needs nothing, using names the missing flags.
import assert from "node:assert/strict";
import { openLinuxKvm } from "../src/hw/linux/mod.ts";
import { KVM_CAP } from "../src/hw/linux/kvm_ioctls.ts";
import { announceSkip, probe } from "./helpers/linux.ts";

announceSkip("linux_capabilities_test");

/** KVM_CHECK_EXTENSION issued directly, without the backend's code. */
function rawCheckExtensions(vmType: number, caps: number[]): { system: number[]; vm: number[] } {
  const lib = Deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  });
  try {
    const kvm = lib.symbols.open(new TextEncoder().encode("/dev/kvm\0"), 2);
    assert.ok(kvm >= 0, "open /dev/kvm");
    const vm = lib.symbols.ioctl(kvm, 0xae01n, BigInt(vmType));
    assert.ok(vm >= 0, "KVM_CREATE_VM");
    const ask = (fd: number) => caps.map((cap) => lib.symbols.ioctl(fd, 0xae03n, BigInt(cap)));
    const result = { system: ask(kvm), vm: ask(vm) };
    lib.symbols.close(vm);
    lib.symbols.close(kvm);
    return result;
  } finally {
    lib.close();
  }
}

Deno.test({
  name: "capabilities match what KVM_CHECK_EXTENSION answers directly",
  ignore: !probe.available,
  fn() {
    using kvm = openLinuxKvm();
    const c = kvm.capabilities;
    const order = [
      KVM_CAP.USER_MEMORY2,
      KVM_CAP.MEMORY_ATTRIBUTES,
      KVM_CAP.GUEST_MEMFD,
      KVM_CAP.VM_TYPES,
      KVM_CAP.GUEST_MEMFD_FLAGS,
    ];
    const raw = rawCheckExtensions(0, order);
    assert.deepEqual(
      [
        c.userMemory2 ? 1 : 0,
        c.memoryAttributes,
        c.guestMemfd ? 1 : 0,
        c.vmTypes,
        c.guestMemfdFlags,
      ],
      [Math.min(raw.vm[0], 1), raw.vm[1], Math.min(raw.vm[2], 1), raw.system[3], raw.vm[4]],
    );
    // The backend's own raw accessor agrees too.
    assert.equal(kvm.checkExtension(KVM_CAP.MEMORY_ATTRIBUTES), c.memoryAttributes);
    assert.equal(c.apiVersion, 12);
    assert.equal(c.inPlaceConversion, false);
  },
});

Deno.test({
  name: "capabilities are consistent with what a VM of type 0 can have",
  ignore: !probe.available,
  fn() {
    using kvm = openLinuxKvm({ vmType: 0 });
    const c = kvm.capabilities;
    assert.equal(kvm.kind, "linux");
    assert.equal(kvm.vmType, 0);
    assert.ok((c.vmTypes & 1) !== 0, "VM type 0 is always listed");
    // A VM without private memory supports no attributes.
    assert.equal(c.memoryAttributes, 0);
    assert.equal(c.guestMemfd, true, "this project's hosts (Linux 6.18) have guest_memfd");
    assert.deepEqual(kvm.realParts, {
      attributes: false,
      guestMemfd: c.guestMemfd,
      punch: true,
      memslots: c.userMemory2,
    });
    // Exactly one notice per part that is not real, and it names the ioctl.
    assert.equal(kvm.notices.length, 1);
    assert.match(kvm.notices[0], /KVM_SET_MEMORY_ATTRIBUTES/);
    assert.match(kvm.notices[0], /emulated, not real/);
  },
});

Deno.test({
  name: "onNotice hears each notice once, the same text as notices",
  ignore: !probe.available,
  fn() {
    const heard: string[] = [];
    using kvm = openLinuxKvm({ onNotice: (m) => heard.push(m) });
    assert.deepEqual(heard, [...kvm.notices]);
  },
});

Deno.test({
  name: "a VM type the kernel does not list fails with EINVAL naming the types there are",
  ignore: !probe.available || (probe.capabilities!.vmTypes & 2) !== 0,
  fn() {
    assert.throws(
      () => openLinuxKvm({ vmType: 1 }),
      (e: Error & { errno?: string }) =>
        e.name === "HwError" && e.errno === "EINVAL" &&
        /VM type 1 is not supported/.test(e.message),
    );
  },
});

const runAllowed = Deno.permissions.querySync({ name: "run" }).state === "granted";

/** Runs `code` in a child Deno with only `flags`, returning its stdout. */
async function runChild(code: string, flags: string[]): Promise<string> {
  const dir = Deno.makeTempDirSync();
  try {
    const script = `${dir}/child.ts`;
    Deno.writeTextFileSync(script, code);
    const config = new URL("../deno.json", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", `--config=${config}`, ...flags, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
    return stdout;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const modUrl = new URL("../src/hw/linux/mod.ts", import.meta.url).href;

Deno.test({
  name: "importing needs no permissions; using names each missing flag",
  ignore: !runAllowed,
  async fn() {
    const code = `
      import { openLinuxKvm, probeKvm } from "${modUrl}";
      const p = probeKvm();
      let thrown = "";
      try { openLinuxKvm(); } catch (e) { thrown = e.name + ": " + e.message; }
      console.log(JSON.stringify({ p, thrown }));
    `;
    const none = JSON.parse(await runChild(code, []));
    assert.equal(none.p.available, false);
    assert.match(none.p.reason, /--allow-ffi --allow-read=\/dev\/kvm --allow-write=\/dev\/kvm/);
    assert.match(none.thrown, /^NotCapable: .*--allow-ffi/);

    const ffiOnly = JSON.parse(await runChild(code, ["--allow-ffi"]));
    assert.match(ffiOnly.p.reason, /missing permissions: --allow-read=\/dev\/kvm --allow-write/);
    assert.doesNotMatch(ffiOnly.p.reason, /allow-ffi/);
  },
});
