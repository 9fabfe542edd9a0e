// The CNI socket as a shim reaches it: HTTP/1.1 over a real unix socket, requests in Multus'
// thick-plugin wire format, served by Attachments running the REAL bridge plugin into a real netns
// (test/cni/netns.ts). The handler here attaches the cluster network only: which delegates a pod
// gets is the attach plan's business, not the socket's.
import { spawnSync } from "node:child_process";
import { request } from "node:http";
import { lstat, mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Result, fail, ok } from "../../src/api/errors.js";
import { Attachments, type CniCall, type CniError, type CniResult, CniRunner, type CniServer, SpawnPluginExec, startCniServer } from "../../src/cni/index.js";
import { CNI_DIR, CniNetns, IS_ROOT, globalAddresses, list } from "./netns.js";

if (!IS_ROOT) console.warn("\n!! test/cni/server.test.ts SKIPPED: not root, cannot create network namespaces !!\n");

interface Reply {
  readonly status: number;
  readonly body: string;
}

function call(socketPath: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { "Content-Type": "application/json", ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body));
  });
}

describe.skipIf(!IS_ROOT)("the CNI socket", () => {
  let lab: CniNetns;
  let server: CniServer;
  let socketPath: string;
  let ready = false;
  let pod: string;

  const cluster = (type = "bridge") =>
    list({ cniVersion: "1.0.0", name: "cluster", type, bridge: "ngsock", ipam: { type: "host-local", dataDir: lab.dataDir, ranges: [[{ subnet: "198.18.60.0/24" }]] } });
  const body = (command: string, extra: Record<string, string> = {}) => ({
    env: {
      PATH: process.env.PATH ?? "/usr/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: "sock-1",
      CNI_NETNS: pod,
      CNI_IFNAME: "eth0",
      CNI_PATH: CNI_DIR,
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=tenant-a;K8S_POD_NAME=web;K8S_POD_UID=9f0c",
      ...extra,
    },
    config: Buffer.from(JSON.stringify({ cniVersion: "0.4.0", name: "nadguard", type: "nadguard-cni", clusterType: extra.CLUSTER_TYPE ?? "bridge" })).toString("base64"),
  });

  beforeAll(async () => {
    lab = await CniNetns.create();
    pod = await lab.addPod("sock");
    const runner = new CniRunner({ pluginDirs: [CNI_DIR], cacheDir: join(lab.dir, "cni"), exec: new SpawnPluginExec({ netns: lab.switchPath }) });
    const attachments = new Attachments({ runner, cacheDir: join(lab.dir, "cni") });
    socketPath = join(lab.dir, "run", "nadguard.sock");
    server = await startCniServer({
      socketPath,
      handler: {
        ready: () => ready,
        async handle(c: CniCall): Promise<Result<CniResult | undefined, CniError>> {
          const sandbox = { containerId: c.containerId, netns: c.netns, ifname: c.ifname, args: c.args };
          if (c.command === "DEL") return (await attachments.del(sandbox), ok(undefined));
          if (c.command !== "ADD") return ok(undefined);
          const type = String(c.config.clusterType);
          const added = await attachments.add({
            ...sandbox,
            pod: { namespace: c.k8s.namespace ?? "", name: c.k8s.name ?? "", uid: c.k8s.uid },
            delegates: [{ name: "cluster", ifname: c.ifname, clusterNetwork: true, config: cluster(type), capabilityArgs: {} }],
          });
          return added.ok ? ok(added.value[0]!.result) : fail(added.error.error);
        },
      },
    });
  });

  afterAll(async () => {
    await server?.close();
    await lab?.destroy();
  });

  it("is a 0600 socket in a 0700 directory; healthz answers, readyz only once ready", async () => {
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
    expect((await stat(join(lab.dir, "run"))).mode & 0o777).toBe(0o700);
    expect(await call(socketPath, "GET", "/healthz")).toEqual({ status: 200, body: "ok" });
    expect(await call(socketPath, "GET", "/readyz")).toEqual({ status: 503, body: "not ready" });
    ready = true;
    expect(await call(socketPath, "GET", "/readyz")).toEqual({ status: 200, body: "ok" });
  });

  it("answers a POST /cni that requires readiness 503 without serving it while not ready, and serves it once ready", async () => {
    ready = false;
    try {
      expect(await call(socketPath, "POST", "/cni", body("ADD", { CNI_CONTAINERID: "sock-ready" }), { "Nadguard-Require-Ready": "1" })).toEqual({ status: 503, body: "not ready" });
      expect(await lab.linkNames(pod)).toEqual(["lo"]);
    } finally {
      ready = true;
    }
    const served = await call(socketPath, "POST", "/cni", body("ADD", { CNI_CONTAINERID: "sock-ready" }), { "Nadguard-Require-Ready": "1" });
    expect(served.status).toBe(200);
    expect((await lab.linkNames(pod)).sort()).toEqual(["eth0", "lo"]);
    expect(await call(socketPath, "POST", "/cni", body("DEL", { CNI_CONTAINERID: "sock-ready" }))).toEqual({ status: 200, body: "" });
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
  });

  it("ADD answers 200 with the result in 1.0.0 under Result, and the pod has that address", async () => {
    const reply = await call(socketPath, "POST", "/cni", body("ADD"));
    expect(reply.status).toBe(200);
    const { Result: result } = JSON.parse(reply.body) as { Result: CniResult };
    expect(result.cniVersion).toBe("1.0.0");
    const eth0 = (await lab.links(pod)).find((l) => l.ifname === "eth0");
    expect(result.ips?.map((ip) => ip.address)).toEqual(globalAddresses(eth0));
    expect(result.ips?.[0]).not.toHaveProperty("version");
  });

  it("DEL answers 200 with an empty body, also the second time with an empty netns", async () => {
    expect(await call(socketPath, "POST", "/cni", body("DEL"))).toEqual({ status: 200, body: "" });
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await call(socketPath, "POST", "/cni", body("DEL", { CNI_NETNS: "" }))).toEqual({ status: 200, body: "" });
  });

  it("a failing ADD answers 400 with the CNI error object in the runtime's version", async () => {
    const reply = await call(socketPath, "POST", "/cni", body("ADD", { CLUSTER_TYPE: "nadguard-missing" }));
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.body)).toEqual({
      cniVersion: "0.4.0",
      code: 999,
      msg: `[tenant-a/web/9f0c] cluster network "cluster" (interface eth0): plugin type="nadguard-missing" name="cluster" failed (add): no plugin binary "nadguard-missing" in the plugin path: searched ${CNI_DIR}`,
    });
  });

  it("answers a bad request with 400 and the reason, an unknown route with 404", async () => {
    expect(await call(socketPath, "POST", "/cni", "{")).toEqual({ status: 400, body: expect.stringContaining('"code":6,"msg":"the request is not JSON') });
    expect(JSON.parse((await call(socketPath, "POST", "/cni", body("ADD", { CNI_IFNAME: "" }))).body)).toEqual({ code: 4, msg: "required env variables [CNI_IFNAME] missing" });
    expect((await call(socketPath, "GET", "/cni")).status).toBe(404);
  });

  it("takes over a stale socket left by an earlier run, and refuses to remove anything else", async () => {
    const other = join(lab.dir, "run2", "nadguard.sock");
    await mkdir(join(lab.dir, "run2"));
    // An earlier daemon killed without closing leaves its socket file behind.
    spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(other)}, () => process.kill(process.pid, "SIGKILL"))`]);
    expect((await lstat(other)).isSocket()).toBe(true);
    await writeFile(join(lab.dir, "run2", "placeholder"), "");
    const second = await startCniServer({ socketPath: other, handler: { ready: () => true, handle: async () => ok(undefined) } });
    expect(await call(other, "GET", "/healthz")).toEqual({ status: 200, body: "ok" });
    await second.close();
    await expect(startCniServer({ socketPath: join(lab.dir, "run2", "placeholder"), handler: { ready: () => true, handle: async () => ok(undefined) } })).rejects.toThrow(
      `${join(lab.dir, "run2", "placeholder")} exists and is not a socket; not removing it`,
    );
  });
});
