// What the kubelet's probes of the node DaemonSet see (manifests/node/daemonset.yaml): the daemon as
// a process, `--metrics-listen` on a TCP port, whose `/healthz` answers from the start and whose
// `/readyz` follows the daemon's readiness exactly as `/readyz` on the unix socket does (503 until
// the readiness indicator file exists, 200 then, gone once SIGTERM has stopped the daemon). A kubelet
// cannot probe a unix socket: this port is what the readiness probe asks. The shim's STATUS, run as
// a process as containerd runs it, follows the same readiness.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NADGUARD_BIN, type RunResult, run, sleep } from "../e2e/sys.js";
import { IS_ROOT } from "./netns.js";

interface Answer {
  readonly status: number;
  readonly body: string;
}

function get(options: { socketPath: string } | { url: string }, path: string): Promise<Answer> {
  return new Promise((resolve) => {
    const target = "url" in options ? new URL(path, options.url) : undefined;
    const req = request(target ?? { socketPath: (options as { socketPath: string }).socketPath, path }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", () => resolve({ status: 0, body: "" }));
    req.end();
  });
}

describe.skipIf(!IS_ROOT)("nadguard node: the probes on --metrics-listen, and the shim's STATUS", () => {
  let dir: string;
  let netd = "";
  let daemon: ChildProcess | undefined;
  let log = "";
  let metricsUrl = "";
  let socketPath = "";
  let indicator = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ng-node-probes-"));
    const state = join(dir, "state");
    netd = join(dir, "net.d");
    await mkdir(state);
    await mkdir(netd);
    indicator = join(dir, "cluster-network-ready");
    socketPath = join(dir, "sock", "nadguard.sock");
    await writeFile(join(state, "cluster.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata: { name: tenant-a }\n");
    await writeFile(join(netd, "10-cluster.conf"), JSON.stringify({ cniVersion: "1.0.0", name: "cluster", type: "bridge", bridge: "ngprobebr" }));
    const daemonConfig = join(dir, "daemon.yaml");
    await writeFile(daemonConfig, `socketDir: ${join(dir, "sock")}\ncniConfigDir: ${netd}\nbinDir: ${join(dir, "bin")}\ncniDir: ${join(dir, "cni")}\nreadinessindicatorfile: ${indicator}\n`);
    daemon = spawn(process.execPath, [NADGUARD_BIN, "node", "--state", state, "--node", "node-1", "--daemon-config", daemonConfig, "--metrics-listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
    daemon.stdout!.on("data", (chunk: Buffer) => (log += chunk.toString()));
    daemon.stderr!.on("data", (chunk: Buffer) => (log += chunk.toString()));
    for (let i = 0; i < 200 && !log.includes("serving CNI on") && daemon.exitCode === null; i++) await sleep(100);
    metricsUrl = /metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(log)?.[1] ?? "";
    if (metricsUrl === "" || !log.includes("serving CNI on")) throw new Error(`nadguard node did not start:\n${log}`);
  }, 30_000);

  afterAll(async () => {
    if (daemon?.pid !== undefined && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon!.once("exit", resolve));
      process.kill(daemon.pid, "SIGKILL");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  /** The shim run as containerd runs it for STATUS: the plugin of the daemon's conflist on stdin. */
  async function status(timeoutMs: number): Promise<RunResult> {
    const list = JSON.parse(await readFile(join(netd, "00-nadguard.conflist"), "utf8")) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
    return run(join(dirname(NADGUARD_BIN), "nadguard-cni"), [], {
      input: JSON.stringify({ ...list.plugins[0], name: list.name, cniVersion: list.cniVersion }),
      env: { PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`, CNI_COMMAND: "STATUS", CNI_PATH: "/usr/lib/cni", NADGUARD_CNI_READY_TIMEOUT_MS: String(timeoutMs) },
      timeoutMs: 30_000,
    });
  }

  it("/healthz answers 200 while /readyz answers 503 on both the port and the socket until the readiness indicator file exists", async () => {
    expect(await get({ url: metricsUrl }, "/healthz")).toEqual({ status: 200, body: "ok\n" });
    expect(await get({ url: metricsUrl }, "/readyz")).toEqual({ status: 503, body: "not ready\n" });
    expect((await get({ socketPath }, "/readyz")).status).toBe(503);
  });

  it("the shim's STATUS fails with code 11 naming the socket while the daemon is not ready", async () => {
    const answer = await status(300);
    expect(answer.code).toBe(1);
    const error = JSON.parse(answer.stdout) as { code: number; msg: string };
    expect(error.code).toBe(11);
    expect(error.msg).toContain(socketPath);
  });

  it("/readyz turns 200 on the port once the indicator file exists, as on the socket", async () => {
    await writeFile(indicator, "");
    let answer = await get({ url: metricsUrl }, "/readyz");
    // The daemon looks for the file every 2 s.
    for (let i = 0; i < 50 && answer.status !== 200; i++) {
      await sleep(100);
      answer = await get({ url: metricsUrl }, "/readyz");
    }
    expect(answer).toEqual({ status: 200, body: "ok\n" });
    expect((await get({ socketPath }, "/readyz")).status).toBe(200);
  });

  it("the shim's STATUS exits 0 and prints nothing once the daemon is ready", async () => {
    expect(await status(5000)).toMatchObject({ code: 0, stdout: "" });
  });

  it("after SIGTERM the daemon exits 0 and the port no longer answers", async () => {
    const exited = new Promise<number | null>((resolve) => daemon!.once("exit", (code) => resolve(code)));
    process.kill(daemon!.pid!, "SIGTERM");
    expect(await exited).toBe(0);
    expect((await get({ url: metricsUrl }, "/readyz")).status).toBe(0);
  });
});
