// nadguard's thin typed layer over the `nft` binary (no netlink), in the shape of
// kubernetes-sigs/knftables: objects, transactions, rendering, errors, the exec seam, listings, the fake.
export * from "./objects.js";
export * from "./transaction.js";
export * from "./render.js";
export * from "./errors.js";
export * from "./exec.js";
export * from "./addon.js";
export * from "./listing.js";
export * from "./state.js";
export * from "./nft.js";
export * from "./fake.js";
export * from "./script.js";
export * from "./validate.js";
export * from "./tools.js";
