// Trace lines of every kind a real QEMU log mixes (and characters of more than one byte), and
// random traces of them, for the stream and worker tests.
import fc from "fast-check";

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
  (n) => `# ${convertLine(n % 16384, true)}`, // a conversion commented out: a comment
  (n) => `kvm_convert_memory start 0x${n.toString(16)} size 0x1000 sideways`, // bad
  (n) => `{"op":"convert","gpa":${n},"size":4096,"to":"shared"`, // bad JSON
  // Bad, its message quoting characters of 2, 3 and 4 bytes: a chunk boundary inside one of
  // them must not change what the message says.
  (n) => `kvm_convert_memory start 0x${n.toString(16)} size 0x1000 ü€${n % 2 ? "𝄞" : ""}`,
];

/**
 * A random trace text (fast-check): up to `maxLines` lines of every kind,
 * LF or CRLF, with or without a newline after the last.
 */
export function traceText(maxLines: number): fc.Arbitrary<string> {
  return fc.tuple(
    fc.array(fc.tuple(fc.nat(LINE_KINDS.length - 1), fc.nat(100_000)), { maxLength: maxLines }),
    fc.constantFrom("\n", "\r\n"),
    fc.boolean(),
  ).map(([picks, eol, finalNewline]) =>
    picks.map(([k, n]) => LINE_KINDS[k](n)).join(eol) +
    (finalNewline && picks.length > 0 ? eol : "")
  );
}
