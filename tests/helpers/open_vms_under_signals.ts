// Run by tests/linux_signals_test.ts in a process of its own: opens VMs while
// signals arrive and prints, as JSON, what each opening did and how many raw
// KVM_CREATE_VM calls with signals left unblocked failed under the same
// signals (`reached`: 0 means the signals never arrived during a call here, so
// the run proves nothing; on one CPU, or beside a busy process, the sender and
// this process take turns and that is what happens). `flood` has another
// process send SIGUSR1 (with a listener installed) every few hundred
// microseconds (floodPeriodUs); `profile` relies on V8's sampling profiler,
// which the parent turns on with --v8-flags and which sends SIGPROF to this
// thread. Arguments: MODE COUNT [VM_TYPE].
import { openLinuxKvm } from "../../src/hw/linux/mod.ts";
import { HwError } from "../../src/hw/errors.ts";
import { ioctlInt, libc } from "../../src/hw/linux/libc.ts";
import { KVM_CREATE_VM } from "../../src/hw/linux/kvm_ioctls.ts";
import { openDevice } from "../../src/hw/linux/linux_kvm.ts";

const [mode, countText, typeText] = Deno.args;
const count = Number(countText);
const vmType = Number(typeText ?? "0");

const outcomes: string[] = [];
let reached = 0;

function openAll(): void {
  for (let i = 0; i < count; i++) {
    try {
      using _vm = openLinuxKvm({ vmType });
      outcomes.push("opened");
    } catch (e) {
      outcomes.push(e instanceof HwError ? e.errno : String(e));
    }
  }
}

/** Makes `count` raw KVM_CREATE_VM calls of type 0 with signals unblocked; counts the failures. */
function canary(): void {
  const { sym } = libc();
  const kvm = openDevice();
  try {
    for (let i = 0; i < count; i++) {
      const fd = ioctlInt(kvm, KVM_CREATE_VM, 0);
      if (fd < 0) reached++;
      else sym.close(fd);
    }
  } finally {
    sym.close(kvm);
  }
}

/**
 * The flood's period: one signal every 100 µs, or twice this process's timer
 * slack if that is longer. Not as fast as a process can send: under a shell's
 * `kill` loop (a signal every few microseconds) this process hung in about 5
 * of 100 runs, in a sleep of the runtime's that never ended. Interrupted
 * before its timer slack (50 µs by default) has passed, nanosleep reports
 * more time remaining than it was asked to sleep, so a sleep restarted with
 * the remaining time under a flood faster than the slack grows without end
 * (strace showed the remaining time climbing past 2.5 s, 49 µs a restart).
 * At 100 µs: 600 runs, no hang; and with KVM_CREATE_VM's signals left
 * unblocked (the mutant `linux-create-vm-signals-unblocked`) 4-16 of 40 VMs
 * still failed with EINTR on two idle CPUs.
 */
function floodPeriodUs(): number {
  let slackNs = 50_000;
  try {
    slackNs = Number(Deno.readTextFileSync("/proc/self/timerslack_ns").trim()) || slackNs;
  } catch {
    // An older kernel: the default slack.
  }
  return Math.max(100, Math.ceil((2 * slackNs) / 1000));
}

if (mode === "flood") {
  let received = 0;
  Deno.addSignalListener("SIGUSR1", () => received++);
  const sender = new URL("./send_signals.ts", import.meta.url).pathname;
  const flooder = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-run", "--quiet", sender, String(Deno.pid), String(floodPeriodUs())],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  // The flood has started once the listener has run.
  while (received === 0) await new Promise((r) => setTimeout(r, 1));
  openAll();
  canary();
  flooder.kill();
  await flooder.status;
  // Signals already sent are still handled by the listener, which stays installed to the end.
  await new Promise((r) => setTimeout(r, 200));
} else {
  openAll();
  canary();
}
console.log(JSON.stringify({ outcomes, reached }));
Deno.exit(0);
