// Run by tests/helpers/open_vms_under_signals.ts: sends SIGUSR1 to PID every
// PERIOD microseconds, waiting busily in between (a timer would round up to a
// millisecond), until PID is gone or this process's parent has changed (the
// one that started it died: an orphan must not spin on). Arguments: PID PERIOD.
const [pid, periodUs] = Deno.args.map(Number);
const parent = Deno.ppid;
for (let sent = 0;; sent++) {
  if (sent % 1000 === 0 && Deno.ppid !== parent) break;
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
