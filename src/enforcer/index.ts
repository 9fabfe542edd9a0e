// The node enforcer: reconcile loop, netns resolution, bounded-frequency runner, transaction
// planning and metrics.
export * from "./cri-netns.js";
export * from "./enforcer.js";
export * from "./metrics.js";
export * from "./netns.js";
export * from "./plan.js";
export * from "./proc-netns.js";
export * from "./runner.js";
