/**
 * State stores: {@link RangeTreeStore} (the product) and {@link BitmapStore}
 * (QEMU's representation, kept as baseline and test oracle), both behind the
 * {@link StateStore} interface.
 *
 * @module
 */

export type { AddBitOptions, Run, StateStore } from "./state_store.ts";
export {
  RANGE_TREE_BYTES_PER_RUN,
  RANGE_TREE_FIXED_BYTES,
  type RangeTreeOptions,
  type RangeTreeStats,
  RangeTreeStore,
  type StoreOptions,
} from "./range_tree_store.ts";
export { BitmapStore, MAX_BITMAP_PAGES } from "./bitmap_store.ts";
export { MAX_BITS, MAX_PAGES } from "./validate.ts";
