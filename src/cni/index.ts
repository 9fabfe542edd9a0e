// The CNI layer: the only module that runs CNI plugins (DESIGN.md).
export * from "./attach.js";
export * from "./cache.js";
export * from "./checkpoint.js";
export * from "./config.js";
export * from "./delegate-cache.js";
export * from "./errors.js";
export * from "./exec.js";
export * from "./fake.js";
export * from "./invoke.js";
export * from "./request.js";
export * from "./result.js";
export * from "./runner.js";
export * from "./runtime-config.js";
export * from "./server.js";
export * from "./status.js";
export * from "./version.js";
