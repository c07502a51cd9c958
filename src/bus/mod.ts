/**
 * The state-change bus: regions, state bits, views, listeners, observers and
 * the transactional change that ties them together.
 *
 * @module
 */

export {
  type ChangeEvent,
  type ChangeResult,
  type ConversionHook,
  type Listener,
  type Notification,
  type Observer,
  type Range,
  type Section,
} from "./listener.ts";
export {
  GUEST_MEMFD_SOURCE,
  listenerStayedRegistered,
  Region,
  type RegionOptions,
  type RegionStats,
  ReplayError,
  type SourceInfo,
  type StoreChoice,
} from "./region.ts";
export {
  ConversionError,
  InvalidChangeError,
  ListenerUndoError,
  RegionFailedError,
  type RolledBack,
  SourceError,
} from "./errors.ts";
export {
  type ClaimOptions,
  type GrowStore,
  IMPLIED_WHEN_UNCLAIMED,
  PLUGGED,
  SHARED,
  StateBits,
} from "./state_bits.ts";
export { DMA_VIEW, isPopulatedState, KVM_VIEW, type View } from "./view.ts";
export { type ViewRun, viewRuns } from "./view_runs.ts";
export { type ChangeMark, type PageRange, StaleMarkError } from "./dirty_tracker.ts";
export {
  type ApplyOptions,
  type ApplyResult,
  applySnapshot,
  prepareApply,
  readSnapshot,
  type RegionChanges,
  type RestoreOptions,
  type SnapshotInput,
  toSnapshotJson,
} from "./snapshot.ts";
export {
  decodeSnapshot,
  decodeSnapshots,
  type Snapshot,
  SNAPSHOT_VERSION,
  type SnapshotBit,
  SnapshotError,
  type SnapshotErrorCode,
  snapshotFromJson,
  type SnapshotHeader,
  type SnapshotJson,
  snapshotToJson,
} from "./snapshot_format.ts";
