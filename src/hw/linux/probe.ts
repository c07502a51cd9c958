/**
 * Asks whether the real KVM backend can run here, without throwing, so tests
 * and the CLI can skip it visibly with the reason.
 *
 * @module
 */

import type { KvmCapabilities } from "../backend.ts";
import { openLinuxKvm, type RealParts } from "./linux_kvm.ts";
import { missingPermissions } from "./permissions.ts";

/** The answer of {@link probeKvm}. */
export interface KvmProbe {
  /** True when /dev/kvm opened and a VM of the requested type was created. */
  available: boolean;
  /** Why it is not available: a missing permission flag, /dev/kvm absent, ... */
  reason?: string;
  /** What the VM supports (when available). */
  capabilities?: KvmCapabilities;
  /** Which parts would run on the real kernel (when available). */
  realParts?: RealParts;
  /** The backend's notices for parts that are not real (when available). */
  notices?: readonly string[];
}

/**
 * Opens /dev/kvm, creates a VM of `options.vmType` (default 0), reads its
 * capabilities and closes it again. Never throws; never prompts for permissions.
 */
export function probeKvm(options: { vmType?: number } = {}): KvmProbe {
  if (Deno.build.os !== "linux") {
    return {
      available: false,
      reason: `the linux KVM backend needs Linux, this is ${Deno.build.os}`,
    };
  }
  const missing = missingPermissions();
  if (missing.length > 0) {
    return { available: false, reason: `missing permissions: ${missing.join(" ")}` };
  }
  try {
    using kvm = openLinuxKvm(options);
    return {
      available: true,
      capabilities: { ...kvm.capabilities },
      realParts: { ...kvm.realParts },
      notices: kvm.notices,
    };
  } catch (error) {
    return { available: false, reason: error instanceof Error ? error.message : String(error) };
  }
}
