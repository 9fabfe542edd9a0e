// The shim bin/nadguard-cni as a process against a stand-in daemon on a real unix socket: what it
// forwards (its whole environment, its stdin base64, Multus' wire format), how it converts ADD's
// 1.0.0 result to its config's cniVersion, how it passes on the daemon's CNI errors, waits for
// readiness, reads whole answers (with a length or chunked), and never fails a DEL. Needs no root: the real daemon is in node.test.ts.
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { type Server, createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NADGUARD_BIN, type RunResult, run } from "../e2e/sys.js";

interface Received {
  readonly env: Record<string, string>;
  readonly config: string;
}

describe("the nadguard-cni shim", () => {
  let dir: string;
  let server: Server;
  let received: Received[] = [];
  let readyzCalls = 0;
  let readyStatus = 200;
  let answer: { status: number; body: string; chunked?: boolean; hangUp?: boolean } = { status: 200, body: "" };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nadguard-shim-"));
    // Run from a directory of its own, as installed: no package.json beside it.
    await copyFile(join(dirname(NADGUARD_BIN), "nadguard-cni"), join(dir, "nadguard-cni"));
    server = createServer((req, res) => {
      if (req.url === "/readyz") {
        readyzCalls++;
        return void res.writeHead(readyStatus).end(readyStatus === 200 ? "ok" : "not ready");
      }
      // As the daemon (src/cni/server.ts): a call that requires readiness is not served while not ready.
      if (req.headers["nadguard-require-ready"] === "1" && readyStatus !== 200) {
        req.resume();
        return void req.on("end", () => res.writeHead(503).end("not ready"));
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString()) as Received);
        // A daemon that dies with the call: the connection goes without an answer.
        if (answer.hangUp) return void req.socket.destroy();
        if (!answer.chunked) return void res.writeHead(answer.status, { "Content-Type": "application/json" }).end(answer.body);
        // No Content-Length: node sends the body chunked, piece by piece.
        res.writeHead(answer.status, { "Content-Type": "application/json" });
        const half = Math.floor(answer.body.length / 2);
        res.write(answer.body.slice(0, half));
        setTimeout(() => res.end(answer.body.slice(half)), 20);
      });
    });
    await new Promise<void>((resolve) => server.listen(join(dir, "nadguard.sock"), resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    received = [];
    readyzCalls = 0;
    readyStatus = 200;
    answer = { status: 200, body: "" };
  });

  const shim = (command: string, cniVersion: string, env: Record<string, string> = {}): Promise<RunResult> =>
    run(process.execPath, [join(dir, "nadguard-cni")], {
      input: JSON.stringify({ cniVersion, name: "nadguard", type: "nadguard-cni", daemonSocketDir: dir }),
      env: { PATH: "/usr/bin:/bin", CNI_COMMAND: command, CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/p", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin", CNI_ARGS: "K8S_POD_NAME=web", EXTRA: "kept", ...env },
    });

  const RESULT = { cniVersion: "1.0.0", interfaces: [{ name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/run/netns/p", mtu: 1500 }], ips: [{ address: "198.18.0.2/24", interface: 0 }, { address: "fd00::2/64", interface: 0 }], routes: [{ dst: "0.0.0.0/0" }] };

  it("forwards its whole environment and stdin, and prints ADD's result in its config's cniVersion", async () => {
    answer = { status: 200, body: JSON.stringify({ Result: RESULT }) };
    const added = await shim("ADD", "0.4.0");
    expect({ code: added.code, stderr: added.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(added.stdout)).toEqual({
      cniVersion: "0.4.0",
      interfaces: [{ name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/run/netns/p" }],
      ips: [
        { version: "4", address: "198.18.0.2/24", interface: 0 },
        { version: "6", address: "fd00::2/64", interface: 0 },
      ],
      routes: [{ dst: "0.0.0.0/0" }],
      dns: {},
    });
    expect(received).toHaveLength(1);
    expect(received[0]!.env).toMatchObject({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/p", CNI_IFNAME: "eth0", CNI_ARGS: "K8S_POD_NAME=web", EXTRA: "kept" });
    expect(JSON.parse(Buffer.from(received[0]!.config, "base64").toString())).toEqual({ cniVersion: "0.4.0", name: "nadguard", type: "nadguard-cni", daemonSocketDir: dir });

    const same = await shim("ADD", "1.0.0");
    expect(JSON.parse(same.stdout)).toEqual(RESULT);
    // A ready daemon is asked once: no GET /readyz before the call.
    expect(readyzCalls).toBe(0);
  });

  it("waits when the daemon answers that it is not ready, then posts again once /readyz says it is", async () => {
    readyStatus = 503;
    answer = { status: 200, body: JSON.stringify({ Result: RESULT }) };
    const becomesReady = setTimeout(() => (readyStatus = 200), 300);
    try {
      const added = await shim("ADD", "1.0.0", { NADGUARD_CNI_READY_TIMEOUT_MS: "5000" });
      expect({ code: added.code, stderr: added.stderr, out: JSON.parse(added.stdout) as unknown }).toEqual({ code: 0, stderr: "", out: RESULT });
    } finally {
      clearTimeout(becomesReady);
    }
    expect(received.map((r) => r.env.CNI_COMMAND)).toEqual(["ADD"]);
    expect(readyzCalls).toBeGreaterThan(0);
  });

  it("reads an answer sent in chunks as a whole (a daemon that streams its answer)", async () => {
    answer = { status: 200, body: JSON.stringify({ Result: RESULT }), chunked: true };
    const added = await shim("ADD", "1.0.0");
    expect({ code: added.code, stderr: added.stderr, out: JSON.parse(added.stdout) as unknown }).toEqual({ code: 0, stderr: "", out: RESULT });
    answer = { status: 400, body: JSON.stringify({ cniVersion: "1.0.0", code: 100, msg: "pod t/web: denied" }), chunked: true };
    const refused = await shim("ADD", "1.0.0");
    expect({ code: refused.code, out: JSON.parse(refused.stdout) as unknown }).toEqual({ code: 1, out: { cniVersion: "1.0.0", code: 100, msg: "pod t/web: denied" } });
  });

  it("prints the daemon's CNI error with exit status 1", async () => {
    answer = { status: 400, body: JSON.stringify({ cniVersion: "1.0.0", code: 100, msg: "pod t/web: denied", details: "why" }) };
    const denied = await shim("ADD", "0.4.0");
    expect({ code: denied.code, out: JSON.parse(denied.stdout) }).toEqual({ code: 1, out: { cniVersion: "0.4.0", code: 100, msg: "pod t/web: denied", details: "why" } });
    const check = await shim("CHECK", "1.0.0");
    expect({ code: check.code, out: JSON.parse(check.stdout) }).toEqual({ code: 1, out: { cniVersion: "1.0.0", code: 100, msg: "pod t/web: denied", details: "why" } });
  });

  it("waits for /readyz at most NADGUARD_CNI_READY_TIMEOUT_MS, then fails with code 11 naming the socket and why", async () => {
    readyStatus = 503;
    const started = Date.now();
    const waited = await shim("ADD", "1.0.0", { NADGUARD_CNI_READY_TIMEOUT_MS: "400" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect({ code: waited.code, out: JSON.parse(waited.stdout) }).toEqual({
      code: 1,
      out: { cniVersion: "1.0.0", code: 11, msg: `nadguard-cni: the nadguard daemon at ${dir}/nadguard.sock is not ready after 400 ms (NADGUARD_CNI_READY_TIMEOUT_MS)`, details: "GET /readyz answered 503 (not ready)" },
    });
    expect(received).toEqual([]);
  });

  it("fails at once with code 11 naming the socket when the daemon took the call and the connection went without an answer (no waiting)", async () => {
    answer = { status: 200, body: "", hangUp: true };
    const started = Date.now();
    const lost = await shim("ADD", "1.0.0", { NADGUARD_CNI_READY_TIMEOUT_MS: "5000" });
    expect(Date.now() - started).toBeLessThan(5000);
    expect({ code: lost.code, out: JSON.parse(lost.stdout) }).toEqual({
      code: 1,
      out: { cniVersion: "1.0.0", code: 11, msg: `nadguard-cni: cannot reach the nadguard daemon at ${dir}/nadguard.sock`, details: "the connection closed before a whole answer" },
    });
    expect({ calls: received.length, readyzCalls }).toEqual({ calls: 1, readyzCalls: 0 });
  });

  it("DEL does not wait for readiness and exits 0 even when the daemon fails it, saying so on stderr", async () => {
    readyStatus = 503;
    answer = { status: 400, body: JSON.stringify({ code: 999, msg: "boom" }) };
    const deleted = await shim("DEL", "1.0.0", { CNI_NETNS: "" });
    expect({ code: deleted.code, stdout: deleted.stdout }).toEqual({ code: 0, stdout: "" });
    expect(deleted.stderr).toBe('nadguard-cni: DEL of container c1 failed in the daemon (400): {"code":999,"msg":"boom"}; reporting success\n');
    expect(received.map((r) => r.env.CNI_COMMAND)).toEqual(["DEL"]);
  });
});
