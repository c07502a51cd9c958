// Run by tests/linux_signals_test.ts in a process of its own: opens VMs while
// signals arrive and prints what failed as JSON. `flood` has a shell send
// SIGUSR1 (with a listener installed) as fast as it can; `profile` relies on
// V8's sampling profiler, which the parent turns on with --v8-flags and which
// sends SIGPROF to this thread. Arguments: MODE COUNT [VM_TYPE].
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

if (mode === "flood") {
  let received = 0;
  Deno.addSignalListener("SIGUSR1", () => received++);
  const flooder = new Deno.Command("sh", {
    args: ["-c", `while kill -USR1 ${Deno.pid} 2>/dev/null; do :; done`],
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
