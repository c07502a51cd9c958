/**
 * The command line's help texts.
 *
 * @module
 */

import { WORKLOAD_NAMES } from "../host/config/schema.ts";
import { KERNEL_SETTINGS } from "../settings/kernel.ts";
import { VMM_POLICIES } from "../settings/vmm.ts";

/** The tool's help. */
export const HELP =
  `memstate: track and propagate a confidential VM's shared / private / plugged memory

usage:
  memstate run CONFIG [options]       run a host configuration and print a report
  memstate compare CONFIG [options]   run the same input on host variants, one question each
  memstate --help | COMMAND --help

exit status: 0 ok, 1 the run found problems (invariant violations, a failed conversion,
a --strict stop), 2 bad input`;

/** `memstate run --help`. */
export const RUN_HELP = `memstate run CONFIG [options]

Builds the host CONFIG describes (regions, KVM, type1 / iommufd devices, virtio-mem), runs its
workload or a trace, checks invariants and prints a report.

options:
  --trace FILE          replay a QEMU trace log (kvm_convert_memory lines) or JSON lines
  --workload NAME       run a named workload: ${WORKLOAD_NAMES.join(", ")}
  --param KEY=VALUE     a workload parameter (repeatable)
  --seed N              workload seed (default: the configuration's, else 1)
  --store KIND          range-tree (default) or bitmap, for every region
  --vmm POLICY          ${VMM_POLICIES.join(", ")} (default: the configuration's, else memstate)
  --kernel KERNEL       ${
  KERNEL_SETTINGS.join(", ")
} (default: the configuration's, else linux-6.18)
  --json                print the report as one JSON object
  --svg FILE            write the regions' state map as SVG
  --html FILE           write the interactive, self-contained HTML report (address space,
                        density, zoom, timelines, latency)
  --strict              stop at the first bad trace line or rejected event
  --load-state FILE     start from the state saved in FILE (before the first event)
  --save-state FILE     save every region's state to FILE after the run (resume with --load-state)
  --continue-on-capacity-error
                        start even if a type1 device may run out of DMA entries`;

/** `memstate compare --help`. */
export const COMPARE_HELP = `memstate compare CONFIG [options]

Runs the same input on host variants and answers one question each, against its own baseline:
  (default)             store: bitmap against range tree; DMA backend: type1 against iommufd
  --vmm A,B             policy: the same host under two VMM policies (${VMM_POLICIES.join(", ")})
  --kernel A,B          kernel: the same host on two kernels (${KERNEL_SETTINGS.join(", ")})
A single --vmm or --kernel value sets it for every variant instead. Timings are the min and
median of --reps runs (default 3). type1 runs at its configured limit; a variant that would not
start says so and what it would need.

options: --trace, --workload, --param, --seed, --strict, --json, --continue-on-capacity-error
(as for run), --vmm, --kernel, --reps N`;
