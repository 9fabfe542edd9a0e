// The policy folder: MultiNetworkPolicy semantics (policy.ts, selector.ts, model.ts), the verdict
// oracle (verdict.ts), the compiler to nft desired state and its incremental path (compiler.ts,
// ruleset.ts, ranges.ts), and a packet evaluator over rendered tables for tests (table-eval.ts).
export * from "./compiler.js";
export * from "./model-index.js";
export * from "./model.js";
export * from "./peer-sets.js";
export * from "./policy.js";
export * from "./pods.js";
export * from "./ranges.js";
export * from "./ruleset.js";
export * from "./selector.js";
export * from "./table-eval.js";
export * from "./verdict.js";
