// What the one-shot commands, `webhook --state`, `enforce --state` and `node --state` load at start,
// run as a user runs them (child processes of bin/nadguard.js): none loads the Kubernetes client (about
// a second of CPU on the project's machine, BENCHMARKS.md's "first run", and about 85 MiB of the node
// daemon's RSS, section 10), the enforcers not the CRI client either unless asked, and `admit` not
// node-forge. A module hook records every package a process resolves; the timings themselves are in
// BENCHMARKS.md.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
});
