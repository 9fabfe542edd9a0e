// The policy folder: MultiNetworkPolicy semantics (policy.ts, selector.ts, pods.ts), the policy model
// (model.ts, model-index.ts, peer-sets.ts, allow-entries.ts) and the verdict oracle over it
// (verdict.ts); the compiler to nft desired state (compiler.ts, desired-state.ts, sets.ts, ruleset.ts,
// ranges.ts, sorted.ts), its incremental path (incremental.ts, transition.ts), and a packet evaluator
// over rendered tables for tests (table-eval.ts).
export * from "./compiler.js";
export * from "./desired-state.js";
export * from "./incremental.js";
export * from "./model-index.js";
export * from "./model.js";
export * from "./peer-sets.js";
export * from "./policy.js";
export * from "./pods.js";
export * from "./ranges.js";
export * from "./ruleset.js";
export * from "./selector.js";
export * from "./sets.js";
export * from "./table-eval.js";
export * from "./transition.js";
export * from "./verdict.js";
