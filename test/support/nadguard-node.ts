// `nadguard node` on a node of the containerd harness (test/support/containerd-node.ts), shared by
// the e2e suite and the benchmarks: the daemon runs as a child process inside the node's netns (so
// its delegates' bridges and veths land there), with its socket, caches and log under the node's
// data dir and conf_dir/bin_dir of the node's containerd; it writes 00-nadguard.conflist, and the
// function returned stops it by its PID (the harness calls it once containerd is stopped) and
// carries that PID (for the suites' faults, e.g. a SIGKILL in the middle of an ADD).
import { spawn } from "node:child_process";
import { existsSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { NADGUARD_BIN, sleep } from "../e2e/sys.js";
import { type ConfCleanup, type NodePaths, processRuns } from "./containerd-node.js";

/** The node's dirs for nadguard: the state directory, the daemon's socket and caches, its config and log. */
export function nadguardDirs(paths: NodePaths): { state: string; sock: string; cni: string; daemonConfig: string; log: string } {
  return { state: join(paths.dataDir, "state"), sock: join(paths.dataDir, "sock"), cni: join(paths.dataDir, "cni"), daemonConfig: join(paths.dataDir, "daemon.yaml"), log: join(paths.dataDir, "nadguard-node.log") };
}

/** The stop of a running `nadguard node`, with its PID. */
export type NadguardNodeStop = ConfCleanup & { readonly pid: number };

/**
 * Starts `nadguard node --state <nadguardDirs.state> --node NODE` in the node's netns once the
 * cluster network's conf is in conf_dir; waits for its 00-nadguard.conflist and its GET /readyz
 * (throws with its log when they do not come); returns its stop: SIGTERM, then SIGKILL after 5 s,
 * by PID (the PID is the stop's `pid`).
 */
export async function startNadguardNode(paths: NodePaths, node: string, extraConfig: Readonly<Record<string, unknown>> = {}): Promise<NadguardNodeStop> {
  const dirs = nadguardDirs(paths);
  const config = { socketDir: dirs.sock, cniConfigDir: paths.confDir, binDir: paths.binDir, cniDir: dirs.cni, ...extraConfig };
  await writeFile(dirs.daemonConfig, JSON.stringify(config));
  const log = openSync(dirs.log, "a");
  const daemon = spawn("nsenter", [`--net=/run/netns/${paths.netns}`, process.execPath, NADGUARD_BIN, "node", "--state", dirs.state, "--node", node, "--daemon-config", dirs.daemonConfig], {
    stdio: ["ignore", log, log],
  });
  const pid = daemon.pid ?? 0;
  const stop = async (): Promise<void> => {
    if (!processRuns(pid)) return;
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 100 && processRuns(pid); i++) await sleep(50);
    if (processRuns(pid)) process.kill(pid, "SIGKILL");
  };
  const conflist = join(paths.confDir, "00-nadguard.conflist");
  const socket = join(dirs.sock, "nadguard.sock");
  for (let i = 0; i < 300 && !(existsSync(conflist) && (await daemonReady(socket))) && daemon.exitCode === null; i++) await sleep(100);
  if (!existsSync(conflist) || !(await daemonReady(socket))) {
    await stop();
    throw new Error(`nadguard node wrote no ${conflist} or is not ready on ${socket}: ${await readFile(dirs.log, "utf8").catch(() => "")}`);
  }
  return Object.assign(stop, { pid });
}

/** The status of the daemon's GET /readyz on `socket`: 200 when ready, 0 when nothing answers. */
export function readyzStatus(socket: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: "/readyz" }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** The daemon's GET /readyz on `socket` answers 200. */
export async function daemonReady(socket: string): Promise<boolean> {
  return (await readyzStatus(socket)) === 200;
}
