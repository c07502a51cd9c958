// Turns a QEMU trace log (log backend) into the same trace in QEMU's binary
// simpletrace format, for the shipped sample examples/traces/tdx-boot.simple:
//   npx -y deno@2 run -A tests/helpers/log_to_simpletrace.ts examples/traces/tdx-boot.log \
//     examples/traces/tdx-boot.simple
// Events and their arguments as accel/kvm/trace-events declares them.
import { SimpletraceWriter } from "./simpletrace.ts";

const EVENTS = ["kvm_set_user_memory", "kvm_run_exit", "kvm_convert_memory", "kvm_memory_fault"];

/** The simpletrace file holding the events of `log` (other lines are dropped). */
export function simpletraceOf(log: string): Uint8Array {
  const w = new SimpletraceWriter(EVENTS);
  for (const line of log.split("\n")) {
    const pid = Number(/^(\d+)@/.exec(line)?.[1] ?? 0);
    let m;
    if (
      (m =
        /kvm_set_user_memory AddrSpace#(\d+) Slot#(\d+) flags=(0x\w+) gpa=(0x\w+) size=(0x\w+) ua=(0x\w+) guest_memfd=(-?\d+) guest_memfd_offset=(0x\w+) ret=(-?\d+)/
          .exec(line))
    ) {
      w.event("kvm_set_user_memory", m.slice(1).map((v) => BigInt(v)), pid);
    } else if ((m = /kvm_run_exit cpu_index (\d+), reason (\d+)/.exec(line))) {
      w.event("kvm_run_exit", [Number(m[1]), Number(m[2])], pid);
    } else if ((m = /kvm_convert_memory start (0x\w+) size (0x\w+) (\w+)/.exec(line))) {
      w.event("kvm_convert_memory", [BigInt(m[1]), BigInt(m[2]), m[3]], pid);
    } else if ((m = /kvm_memory_fault start (0x\w+) size (0x\w+) flags (0x\w+)/.exec(line))) {
      w.event("kvm_memory_fault", [BigInt(m[1]), BigInt(m[2]), BigInt(m[3])], pid);
    }
  }
  return w.bytes();
}

if (import.meta.main) {
  const [from, to] = Deno.args;
  await Deno.writeFile(to, simpletraceOf(await Deno.readTextFile(from)));
}
