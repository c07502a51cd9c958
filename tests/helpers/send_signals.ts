// Run by tests/helpers/open_vms_under_signals.ts: sends SIGUSR1 to PID every
// PERIOD microseconds, waiting busily in between (a timer would round up to a
// millisecond), until PID is gone. Arguments: PID PERIOD.
const [pid, periodUs] = Deno.args.map(Number);
while (true) {
  try {
    Deno.kill(pid, "SIGUSR1");
  } catch {
    break; // the process is gone: the flood is over
  }
  const until = performance.now() + periodUs / 1000;
  while (performance.now() < until) {
    // busy
  }
}
