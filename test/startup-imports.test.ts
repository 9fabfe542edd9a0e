// What the one-shot commands, `webhook --state`, `enforce --state` and `node --state` load at start,
// run as a user runs them (child processes of bin/nadguard.js): none loads the Kubernetes client (about
// a second of CPU on the project's machine, BENCHMARKS.md's "first run", and about 85 MiB of the node
// daemon's RSS, section 10), the enforcers not the CRI client either unless asked, and `admit` not
// node-forge, nor `webhook` started with its certificate files. `webhook --kubeconfig` loads
// client-node but none of its generated API clients and models (src/cluster/kube-client-hooks.ts;
// about 80 MiB of RSS, BENCHMARKS.md section 6). A module hook records every package file a process
// resolves; the timings and RSS themselves are in BENCHMARKS.md.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:https";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCa, generateServingCertificate } from "../certs/generate.js";
import { startFakeApiServer } from "./kube/fake-apiserver.js";
import { daemonReady } from "./support/nadguard-node.js";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "nadguard.js");

let dir: string;
/** `--import` module that registers a resolve hook printing `RESOLVED <url>` for each package file. */
let hookImport: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-startup-"));
  const hooks = join(dir, "hooks.mjs");
  await writeFile(
    hooks,
    `export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (resolved.url.includes("/node_modules/")) process.stderr.write("RESOLVED " + resolved.url + "\\n");
  return resolved;
}
`,
  );
  hookImport = join(dir, "register.mjs");
  await writeFile(hookImport, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Packages (node_modules/NAME or @scope/NAME) a process resolved, from its stderr. */
function packages(stderr: string): Set<string> {
  const names = new Set<string>();
  for (const match of stderr.matchAll(/^RESOLVED .*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)) names.add(match[1]!);
  return names;
}

function collect(child: ChildProcess): { stdout: string; stderr: string } {
  const output = { stdout: "", stderr: "" };
  child.stdout!.on("data", (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output.stderr += chunk.toString()));
  return output;
}

/** bin/nadguard.js with `args` under the hook, run to its end: its exit code and output. */
async function runHooked(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", hookImport, BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const output = collect(child);
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  return { code, ...output };
}

/** bin/nadguard.js with `args` under the hook, a server: `serving` waits until it serves; then SIGTERM. Its output. */
async function serveHooked(args: readonly string[], serving: (child: ChildProcess, output: { stdout: string; stderr: string }) => Promise<void>): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", hookImport, BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const output = collect(child);
  try {
    await serving(child, output);
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once("exit", resolve)));
  }
  return output;
}

/** Resolves once stderr says the webhook listens; rejects if it exits first. Its port. */
function webhookListening(child: ChildProcess, output: { stdout: string; stderr: string }, pattern: RegExp): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const match = pattern.exec(output.stderr + output.stdout);
      if (match) {
        clearInterval(timer);
        resolve(Number(match[1]));
      }
    }, 20);
    child.once("exit", (code) => {
      clearInterval(timer);
      reject(new Error(`webhook exited with ${code}: ${output.stderr}`));
    });
  });
}

/** GET /readyz over TLS trusting `ca`: the status code, 0 when it did not answer. */
function readyz(port: number, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/readyz", ca, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** Polls /readyz until it answers 200 (up to 10 s); the last status. */
async function untilReady(port: number, ca: string): Promise<number> {
  let status = 0;
  for (let i = 0; i < 200 && status !== 200; i++) {
    status = await readyz(port, ca);
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return status;
}

describe("start-up imports", () => {
  it("admit loads neither the Kubernetes client nor node-forge", async () => {
    const output = await runHooked(["admit", "examples/pods/tenant-a-web.yaml", "--state", "examples/cluster", "--as", "alice"]);
    expect(output.code).toBe(0);
    expect(output.stdout).toMatch(/^ALLOWED/m);
    const loaded = packages(output.stderr);
    expect(loaded).toContain("zod"); // the hook sees packages at all
    expect(loaded).not.toContain("@kubernetes/client-node");
    expect(loaded).not.toContain("node-forge");
  }, 60_000);

  it("webhook --state starts listening without loading the Kubernetes client", async () => {
    const certsDir = join(dir, "certs");
    const output = await serveHooked(["webhook", "--state", "examples/cluster", "--listen", "127.0.0.1:0", "--certs-dir", certsDir], (child, output) =>
      new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => {
          if (/nadguard webhook listening on https:\/\/127\.0\.0\.1:\d+/.test(output.stderr)) {
            clearInterval(timer);
            resolve();
          }
        }, 20);
        child.once("exit", (code) => {
          clearInterval(timer);
          reject(new Error(`webhook exited with ${code}: ${output.stderr}`));
        });
      }),
    );
    const loaded = packages(output.stderr);
    expect(loaded).toContain("fastify");
    expect(loaded).not.toContain("@kubernetes/client-node");
  }, 60_000);

  it("enforce --state --once reconciles without loading the Kubernetes client or the CRI client", async () => {
    const output = await runHooked(["enforce", "--state", "examples/cluster", "--node", "startup-imports-no-pods", "--once"]);
    expect(output.code, output.stderr).toBe(0);
    expect(output.stdout).toMatch(/"msg":"0 netns reconciled \(0 changed\), 0 failed, in \d+ ms"/);
    const loaded = packages(output.stderr);
    expect(loaded).toContain("pino");
    expect(loaded).not.toContain("@kubernetes/client-node");
    expect(loaded).not.toContain("@grpc/grpc-js");
  }, 60_000);

  it("node --state becomes ready on its socket without loading the Kubernetes client or the CRI client", async () => {
    const nodeDir = join(dir, "node");
    const netd = join(nodeDir, "net.d");
    await mkdir(netd, { recursive: true });
    await writeFile(join(netd, "10-cluster.conf"), JSON.stringify({ cniVersion: "1.0.0", name: "cluster", type: "bridge", bridge: "startupbr0" }));
    const daemonConfig = join(nodeDir, "daemon.json");
    await writeFile(daemonConfig, JSON.stringify({ socketDir: join(nodeDir, "sock"), cniConfigDir: netd, binDir: join(nodeDir, "bin"), cniDir: join(nodeDir, "cni") }));
    const socket = join(nodeDir, "sock", "nadguard.sock");
    const output = await serveHooked(["node", "--state", "examples/cluster", "--node", "startup-imports-no-pods", "--daemon-config", daemonConfig], async (child, output) => {
      let ready = false;
      for (let i = 0; i < 300 && !ready && child.exitCode === null; i++) {
        ready = await daemonReady(socket);
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(ready, output.stderr + output.stdout).toBe(true);
    });
    const loaded = packages(output.stderr);
    expect(loaded).toContain("prom-client");
    expect(loaded).not.toContain("@kubernetes/client-node");
    expect(loaded).not.toContain("@grpc/grpc-js");
  }, 60_000);

  it("webhook --state with --tls-cert and --tls-key serves without loading node-forge", async () => {
    const ca = generateCa({ commonName: "startup-imports-ca", validityDays: 1 });
    const serving = generateServingCertificate(ca, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityDays: 1 });
    const tlsDir = join(dir, "tls");
    await mkdir(tlsDir, { recursive: true });
    await writeFile(join(tlsDir, "tls.crt"), serving.cert);
    await writeFile(join(tlsDir, "tls.key"), serving.key, { mode: 0o600 });
    const args = ["webhook", "--state", "examples/cluster", "--listen", "127.0.0.1:0", "--tls-cert", join(tlsDir, "tls.crt"), "--tls-key", join(tlsDir, "tls.key")];
    const output = await serveHooked(args, async (child, output) => {
      // With certificate files the address is in the JSON log (stdout), not in a stderr hint.
      const port = await webhookListening(child, output, /"address":"https:\/\/127\.0\.0\.1:(\d+)"/);
      expect(await untilReady(port, ca.cert), output.stderr).toBe(200);
    });
    const loaded = packages(output.stderr);
    expect(loaded).toContain("fastify");
    expect(loaded).not.toContain("node-forge");
    expect(loaded).not.toContain("@kubernetes/client-node");
  }, 60_000);

  it("webhook --kubeconfig becomes ready with client-node's KubeConfig, ListWatch and Watch but none of its generated clients or models", async () => {
    const fake = await startFakeApiServer({});
    try {
      fake.seed("Namespace", [{ apiVersion: "v1", kind: "Namespace", metadata: { name: "tenant-a" } }]);
      const kubeconfig = join(dir, "kubeconfig");
      await writeFile(kubeconfig, fake.kubeConfig().exportConfig());
      const certsDir = join(dir, "kube-certs");
      const output = await serveHooked(["webhook", "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0", "--certs-dir", certsDir], async (child, output) => {
        const port = await webhookListening(child, output, /nadguard webhook listening on https:\/\/127\.0\.0\.1:(\d+)/);
        const ca = await readFile(join(certsDir, "ca.crt"), "utf8");
        expect(await untilReady(port, ca), output.stderr).toBe(200);
      });
      const files = [...output.stderr.matchAll(/^RESOLVED .*\/node_modules\/@kubernetes\/client-node\/dist\/(\S+)$/gm)].map((m) => m[1]!);
      expect(files).toEqual(expect.arrayContaining(["config.js", "cache.js", "watch.js"]));
      expect(files.filter((file) => /^gen\/(index|models\/|apis\/|types\/)/.test(file) || file === "index.js" || file === "serializer.js")).toEqual([]);
      // The SubjectAccessReviews go out as plain JSON, not through AuthorizationV1Api.
      expect(files).not.toContain("gen/apis/AuthorizationV1Api.js");
    } finally {
      await fake.close();
    }
  }, 60_000);
});
