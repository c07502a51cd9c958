/**
 * The Deno permissions the real backend needs, checked with
 * `Deno.permissions.querySync` (which never prompts) before anything is
 * dlopened, so a missing flag is reported by name instead of as a failure
 * deep inside an FFI call.
 *
 * FFI calls bypass Deno's file permissions, so `--allow-ffi` alone would be
 * enough to open /dev/kvm; the backend still asks for read and write on
 * /dev/kvm so that a program's permission list says what it touches.
 *
 * @module
 */

/** The KVM device node. */
export const KVM_DEVICE = "/dev/kvm";

/** The flags the backend needs, each paired with the permission it grants. */
const REQUIRED: { flag: string; descriptor: Deno.PermissionDescriptor }[] = [
  { flag: "--allow-ffi", descriptor: { name: "ffi" } },
  { flag: `--allow-read=${KVM_DEVICE}`, descriptor: { name: "read", path: KVM_DEVICE } },
  { flag: `--allow-write=${KVM_DEVICE}`, descriptor: { name: "write", path: KVM_DEVICE } },
];

/** The command-line flags that are missing for the linux KVM backend (empty when all granted). */
export function missingPermissions(): string[] {
  return REQUIRED.filter((p) => Deno.permissions.querySync(p.descriptor).state !== "granted")
    .map((p) => p.flag);
}

/** Throws `Deno.errors.NotCapable` naming every missing flag. */
export function requireKvmPermissions(): void {
  const missing = missingPermissions();
  if (missing.length > 0) {
    throw new Deno.errors.NotCapable(
      `the linux KVM backend needs ${missing.join(" ")} (missing); ` +
        `the rest of memstate needs no permissions`,
    );
  }
}
