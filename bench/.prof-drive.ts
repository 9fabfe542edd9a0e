import { DEFAULT_CONFIG } from "../src/config/config.js";
import { compile, recompile } from "../src/policy/index.js";
import { policyCluster, relabelPod } from "./synthetic.js";
const pods = Number(process.argv[2] ?? 10000), policies = Number(process.argv[3] ?? 1000);
const mode = process.argv[4] ?? "full";
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const t0 = performance.now();
const c = policyCluster({ pods, policies });
console.log(`cluster ${(performance.now() - t0).toFixed(0)} ms`);
gc();
const h0 = process.memoryUsage().heapUsed;
let compiled = compile(c.snapshot, DEFAULT_CONFIG); // warm-up
const runs = mode === "full" ? 3 : 1;
for (let i = 0; i < runs; i++) {
  gc();
  const t = performance.now();
  compiled = compile(c.snapshot, DEFAULT_CONFIG);
  const el = performance.now() - t;
  gc();
  console.log(`full ${el.toFixed(0)} ms, heap ${( (process.memoryUsage().heapUsed - h0) / 1e6).toFixed(0)} MB rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB states ${compiled.states.size}`);
}
const key = c.podKeys[0]!;
for (let i = 0; i < (mode === "full" ? 3 : Number(process.env.N ?? 20)); i++) {
  const app = (i % 2 === 0) === (c.snapshot.pods.get(key)?.metadata.labels?.app === "api") ? "web" : "api";
  const next = relabelPod(c.snapshot, key, app);
  gc();
  const t = performance.now();
  const r = recompile(compiled, next, DEFAULT_CONFIG);
  console.log(`relabel ${(performance.now() - t).toFixed(2)} ms affected ${r.affected.size}`);
}
