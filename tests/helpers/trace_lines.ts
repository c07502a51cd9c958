// Trace lines of every kind a real QEMU log mixes, for the stream and worker tests.

/** A conversion line of the QEMU log backend at page `page` of the low region. */
export function convertLine(page: number, shared: boolean, pid = true): string {
  const args = `start 0x${(page * 4096).toString(16)} size 0x1000 ` +
    (shared ? "private_to_shared" : "shared_to_private");
  return pid ? `48230@1700000000.${page}:kvm_convert_memory ${args}` : `kvm_convert_memory ${args}`;
}

/** A line of one of the kinds a real log mixes; `k` picks the kind. */
export const LINE_KINDS: ((n: number) => string)[] = [
  (n) => convertLine(n % 16384, n % 3 !== 0),
  (n) => convertLine(n % 16384, n % 2 === 0, false),
  (n) =>
    `{"op":"convert","gpa":"0x${((n % 16384) * 4096).toString(16)}","size":4096,"to":"shared"}`,
  (n) => `48230@1700000000.${n}:kvm_run_exit cpu_index 0, reason 3`,
  () => "",
  () => "# a comment",
  (n) => `kvm_convert_memory start 0x${n.toString(16)} size 0x1000 sideways`, // bad
  (n) => `{"op":"convert","gpa":${n},"size":4096,"to":"shared"`, // bad JSON
];
