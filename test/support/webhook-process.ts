// Test support: `nadguard webhook` as the process a cluster runs, on a real TLS socket on
// 127.0.0.1, and `nadguard admit` as the process a CI job runs.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export const BIN = join(import.meta.dirname, "..", "..", "bin", "nadguard.js");
export const EXAMPLES = join(import.meta.dirname, "..", "..", "examples");

export interface WebhookProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** POSTs `body` over HTTP/1.1 to `path`; the status and the body as text. */
  post(path: string, body: string): Promise<{ status: number; text: string }>;
  get(path: string): Promise<{ status: number; text: string }>;
  /** SIGTERM, then waits for the exit; removes the certificates. */
  stop(): Promise<void>;
}

/** Starts `nadguard webhook --state DIR --listen 127.0.0.1:0` with a fresh development certificate. */
export async function startWebhook(state: string, options: { env?: NodeJS.ProcessEnv } = {}): Promise<WebhookProcess> {
  const certsDir = await mkdtemp(join(tmpdir(), "nadguard-certs-"));
  const child = spawn(process.execPath, [BIN, "webhook", "--state", state, "--listen", "127.0.0.1:0", "--certs-dir", certsDir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
  let stderr = "";
  // stdout is the JSON log; the listening address and the curl hint come on stderr.
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (match && stderr.includes("try: curl")) resolve(Number(match[1]));
    });
    child.on("exit", (code) => reject(new Error(`webhook exited with ${code}: ${stderr}`)));
  });
  // Keep reading so that a full pipe never blocks the server's log writes.
  child.stdout!.resume();
  const ca = await readFile(join(certsDir, "ca.crt"), "utf8");
  const send = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const headers = body === undefined ? {} : { "content-type": "application/json" };
      const req = httpsRequest({ host: "127.0.0.1", port, path, method, ca, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
      });
      req.on("error", reject);
      req.end(body);
    });
  return {
    child,
    port,
    post: (path, body) => send("POST", path, body),
    get: (path) => send("GET", path),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(certsDir, { recursive: true, force: true });
    },
  };
}

const run = promisify(execFile);

/** Runs `nadguard admit ARGS…`: its exit code and what it printed. */
export async function admitProcess(...args: string[]): Promise<{ code: number; out: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, "admit", ...args]);
    return { code: 0, out: stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout, stderr: failed.stderr };
  }
}
