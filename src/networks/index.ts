// The networks folder: selection annotations, interface naming, network-status, and the address
// and name rules they share.
export * from "./addresses.js";
export * from "./default-network.js";
export * from "./interfaces.js";
export * from "./nad-config.js";
export * from "./names.js";
export * from "./network-status.js";
export * from "./selection.js";
