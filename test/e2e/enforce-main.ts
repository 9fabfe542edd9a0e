// `nadguard enforce` as its own process for the e2e suites (restarts, SIGTERM, SIGKILL at random
// points), calling the CLI module directly with the flags of issue 4.
import { parseArgs } from "node:util";
import { runEnforce } from "../../src/cli/enforce.js";

const { values } = parseArgs({
  options: {
    state: { type: "string" },
    node: { type: "string" },
    netns: { type: "string" },
    config: { type: "string" },
    once: { type: "boolean", default: false },
    "metrics-listen": { type: "string" },
    parallelism: { type: "string" },
    "min-interval": { type: "string" },
    "max-interval": { type: "string" },
    "remove-on-exit": { type: "boolean", default: false },
  },
});
const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
process.exitCode = await runEnforce(
  {
    state: values.state ?? "",
    node: values.node ?? "",
    netns: values.netns,
    config: values.config,
    once: values.once,
    metricsListen: values["metrics-listen"],
    parallelism: num(values.parallelism),
    minIntervalMs: num(values["min-interval"]),
    maxIntervalMs: num(values["max-interval"]),
    removeOnExit: values["remove-on-exit"],
  },
  (line) => void process.stdout.write(`${line}\n`),
  (line) => void process.stderr.write(`${line}\n`),
);
