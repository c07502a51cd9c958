// Run by tests/linux_signals_test.ts in a process of its own: opens VMs while
// signals arrive and prints what failed as JSON. `flood` has another process
// send SIGUSR1 (with a listener installed) every FLOOD_PERIOD_US microseconds;
// `profile` relies on V8's sampling profiler, which the parent turns on with
// --v8-flags and which sends SIGPROF to this thread. Arguments: MODE COUNT
// [VM_TYPE].
import { openLinuxKvm } from "../../src/hw/linux/mod.ts";
import { HwError } from "../../src/hw/errors.ts";

const [mode, countText, typeText] = Deno.args;
const count = Number(countText);
const vmType = Number(typeText ?? "0");

const outcomes: string[] = [];
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

/**
 * The flood's period. Not as fast as a process can send: under a shell's
 * `kill` loop (a signal every few microseconds) this process hung in 5 of 100
 * runs, in a sleep of the runtime's that never ended. Interrupted before its
 * timer slack (50 µs) has passed, nanosleep reports more time remaining than
 * it was asked to sleep, so a sleep restarted with the remaining time under a
 * flood faster than the slack grows without end (strace showed the remaining
 * time climbing past 2.5 s). One signal every 100 µs: 300 runs, no hang; and
 * with KVM_CREATE_VM's signals left unblocked (the mutant
 * `linux-create-vm-signals-unblocked`) 4-16 of 40 VMs still fail with EINTR.
 */
const FLOOD_PERIOD_US = 100;

if (mode === "flood") {
  let received = 0;
  Deno.addSignalListener("SIGUSR1", () => received++);
  const sender = new URL("./send_signals.ts", import.meta.url).pathname;
  const flooder = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-run", "--quiet", sender, String(Deno.pid), String(FLOOD_PERIOD_US)],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  // The flood has started once the listener has run.
  while (received === 0) await new Promise((r) => setTimeout(r, 1));
  openAll();
  flooder.kill();
  await flooder.status;
  // Signals already sent are still handled by the listener, which stays installed to the end.
  await new Promise((r) => setTimeout(r, 200));
} else {
  openAll();
}
console.log(JSON.stringify(outcomes));
Deno.exit(0);
