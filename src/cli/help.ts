/**
 * The command line's help texts.
 *
 * @module
 */

import { WORKLOAD_NAMES } from "../host/config/schema.ts";
import { IOMMU_SETTINGS } from "../settings/iommu.ts";
import { KERNEL_SETTINGS } from "../settings/kernel.ts";
import { VMM_POLICIES } from "../settings/vmm.ts";

/** What every exit status means (the tool's help and the README say the same). */
export const EXIT_STATUS = `exit status:
  0    every event was applied, a no-op or ignored (a to-shared conversion of an MMIO hole)
  1    the run found a problem, and the report says which: an unreadable trace line, a rejected
       or failed conversion, a refused virtio-mem request, a stop (--strict, QEMU stopping the
       VM), an invariant violation
  2    bad input, refused before any work: a usage error, a configuration or parameter that
       breaks a rule, a host this machine cannot run, a trace that cannot be read or holds no
       event (also with --strict), an output that cannot be written (no output file is then
       changed); a line on standard error names the input and the rule, one per problem
  130  interrupted by Ctrl-C (the report so far is printed; --follow ends this way with 0 or 1)`;

/** The tool's help. */
export const HELP =
  `memstate: track and propagate a confidential VM's shared / private / plugged memory

usage:
  memstate run CONFIG [options]       run a host configuration and print a report
  memstate run --trace FILE [options] replay a QEMU trace on the regions its memslots give
  memstate compare CONFIG [options]   run the same input on host variants, one question each
  memstate compare --trace FILE ...   the same on the regions the trace's memslots give
  memstate --help | COMMAND --help | --version

${EXIT_STATUS}`;

/** `memstate run --help`. */
export const RUN_HELP = `memstate run [CONFIG] [options]

Builds the host CONFIG describes (regions, KVM, type1 / iommufd devices, virtio-mem, plugins),
runs its workload or a trace, checks invariants and prints a report. Without CONFIG, --trace is
replayed on the regions the trace's kvm_set_user_memory events give, with no devices.

options:
  --trace FILE          replay a trace: QEMU log lines (kvm_convert_memory, kvm_set_user_memory),
                        JSON lines, or a QEMU simpletrace binary file; gzip is read too; - reads
                        standard input. Read as a stream: memory does not grow with its size
  --follow              keep reading a growing trace (a running QEMU's log) until Ctrl-C, then
                        print the report
  --workload NAME       run a named workload: ${WORKLOAD_NAMES.join(", ")}
  --param KEY=VALUE     a workload parameter (repeatable, each KEY once; sizes like 64MiB where
                        it is bytes); a trace takes none
  --seed N              workload seed, 0 to 4294967295 (default: the configuration's, else 1);
                        a trace takes none
  --store KIND          range-tree (default) or bitmap, for every region
  --vmm POLICY          ${VMM_POLICIES.join(", ")} (default: the configuration's, else memstate)
  --kernel KERNEL       ${
  KERNEL_SETTINGS.join(", ")
} (default: the configuration's, else linux-6.18)
  --iommu IOMMU         ${
  IOMMU_SETTINGS.join(", ")
} (default: the configuration's, else intel-vt-d):
                        what IO page tables cost, which IOVA is reserved
  --plugin FILE         load a plugin module (repeatable); it follows every region
  --json                print the report as one JSON object
  --svg FILE            write the regions' state map as SVG
  --html FILE           write the interactive, self-contained HTML report (address space,
                        density, zoom, timelines, latency)
  --strict              stop at the first bad trace line or rejected event (a trace file is
                        checked whole first, so a malformed one changes nothing)
  --load-state FILE     start from the state saved in FILE (before the first event)
  --save-state FILE     save every region's state to FILE after the run (resume with --load-state)
  --continue-on-capacity-error
                        start even if a type1 device may run out of DMA entries
Every option but --param and --plugin is given at most once.

${EXIT_STATUS}`;

/** `memstate compare --help`. */
export const COMPARE_HELP = `memstate compare [CONFIG] [options]

Runs the same input on host variants and answers one question each, against its own baseline:
  (default)             store: bitmap against range tree; DMA backend: type1 against iommufd
  --vmm A,B             policy: the same host under two VMM policies (${VMM_POLICIES.join(", ")})
  --kernel A,B          kernel: the same host on two kernels (${KERNEL_SETTINGS.join(", ")})
  --iommu A,B           IOMMU: the same host on two IOMMUs (${
  IOMMU_SETTINGS.join(", ")
}): IO page tables
One of --vmm, --kernel, --iommu may be given as A,B; a single value sets it for every variant
instead. Timings are the min and median of --reps runs (default 3). type1 runs at its configured
limit; a variant that would not start says so and what it would need. When no variant starts,
the input is refused as run refuses it (exit 2).

options: --trace FILE (not - : compare reads it several times), --workload, --param, --seed,
--strict, --json, --plugin, --continue-on-capacity-error (as for run), --vmm, --kernel, --iommu,
--reps N

${EXIT_STATUS}`;
