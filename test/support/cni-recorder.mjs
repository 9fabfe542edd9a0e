// A CNI plugin for the node harness's observations of the runtime: chained after the cluster
// network's plugins, it appends one JSON line per call to the conf's `logFile` (the command, the
// CNI_* environment, the names of the rest of the environment, and the config it got on stdin)
// and passes the previous result on. What it does is read at each call from the conf's
// `controlFile` (JSON: `failAdd`/`failDel` make that command fail with the given message,
// `sleepAddMs` delays ADD), so a suite changes its behaviour between pods without touching the
// conf dir. A second line with `phase: "end"` marks a call that ran to its end (one killed by the
// runtime has none). Run with node through the wrapper the harness writes into bin_dir.
import { appendFileSync, readFileSync } from "node:fs";

const command = process.env.CNI_COMMAND ?? "";
const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

function fail(cniVersion, code, msg) {
  process.stdout.write(JSON.stringify({ cniVersion, code, msg, details: "cni-recorder" }));
  process.exit(1);
}

if (command === "VERSION") {
  process.stdout.write(JSON.stringify({ cniVersion: "1.0.0", supportedVersions: VERSIONS }));
  process.exit(0);
}

let config;
try {
  config = JSON.parse(readFileSync(0, "utf8"));
} catch (error) {
  fail("1.0.0", 6, `cni-recorder: unreadable config: ${error.message}`);
}
const cniVersion = config.cniVersion ?? "1.0.0";
let control = {};
try {
  control = JSON.parse(readFileSync(config.controlFile, "utf8"));
} catch {
  // No control file: record and pass on.
}
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith("CNI_")));
const record = (phase) =>
  appendFileSync(config.logFile, `${JSON.stringify({ phase, command, pid: process.pid, at: Date.now(), env, envKeys: Object.keys(process.env).sort(), config })}\n`);
record("start");

if (command === "ADD") {
  if (control.sleepAddMs) await new Promise((resolve) => setTimeout(resolve, control.sleepAddMs));
  if (control.failAdd) fail(cniVersion, 999, control.failAdd);
  record("end");
  process.stdout.write(JSON.stringify(config.prevResult ?? { cniVersion, interfaces: [], ips: [] }));
} else if (command === "DEL") {
  if (control.failDel) fail(cniVersion, 999, control.failDel);
  record("end");
} else {
  record("end");
}
