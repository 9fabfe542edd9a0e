// The compiled build as `npm ci` leaves it (package.json's `prepare` script) and `npm start` runs
// it: a copy of the package is built into its own dist/, then run as a user runs it. The files the
// webhook names (certs/generated/, examples/) must be the package's, not dist/'s; bin/nadguard.js
// must run dist/ only while no source is newer.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { appendFile, cp, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
let pkg: string;

beforeAll(async () => {
  pkg = await mkdtemp(join(tmpdir(), "nadguard-build-"));
  for (const entry of ["package.json", "tsconfig.json", "tsconfig.build.json", "bin", "src", "webhook", "certs", "examples"]) {
    await cp(join(ROOT, entry), join(pkg, entry), { recursive: true, filter: (source) => !source.includes(`${join(ROOT, "certs", "generated")}`) });
  }
  await symlink(join(ROOT, "node_modules"), join(pkg, "node_modules"));
  await run("npm", ["run", "prepare"], { cwd: pkg });
}, 600_000);

afterAll(async () => {
  if (pkg) await rm(pkg, { recursive: true, force: true });
});

async function nadguard(args: string[]): Promise<{ out: string; err: string }> {
  const { stdout, stderr } = await run(process.execPath, ["bin/nadguard.js", ...args], { cwd: pkg, timeout: 60_000 });
  return { out: stdout, err: stderr };
}

describe("the compiled build", () => {
  it("holds the CLI, the webhook and the certificates, and no test code", async () => {
    const files = (await readdir(join(pkg, "dist"), { recursive: true })).map(String);
    expect(files).toEqual(
      expect.arrayContaining([join("src", "cli", "main.js"), join("webhook", "start.js"), join("certs", "dev-certificates.js")]),
    );
    expect(files.filter((file) => file.endsWith(".test.js") || file.includes("test-helpers") || file.startsWith(join("test", "")))).toEqual([]);
  });

  it("keeps the development certificates in certs/generated/ and points the curl line at examples/, as README says", async () => {
    const child: ChildProcess = spawn(process.execPath, ["bin/nadguard.js", "webhook", "--state", "examples/cluster", "--listen", "127.0.0.1:0"], {
      cwd: pkg,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const curl = await new Promise<string>((resolve, reject) => {
      child.stderr!.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        const line = stderr.split("\n").find((l) => l.startsWith("try: curl"));
        if (line) resolve(line);
      });
      child.on("exit", (code) => reject(new Error(`webhook exited with ${code}: ${stderr}`)));
    });
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    expect(curl).toMatch(
      /^try: curl --cacert certs\/generated\/ca\.crt -H 'Content-Type: application\/json' --data @examples\/reviews\/pod-tenant-a-allowed\.json https:\/\/127\.0\.0\.1:\d+\/mutate$/,
    );
    expect(stderr).toContain("in certs/generated (no ca.crt there yet)");
    for (const file of ["ca.crt", "tls.crt", "tls.key", join("..", "..", "examples", "reviews", "pod-tenant-a-allowed.json")]) {
      expect(existsSync(join(pkg, "certs", "generated", file)), file).toBe(true);
    }
    expect(existsSync(join(pkg, "dist", "certs", "generated"))).toBe(false);
  });

  it("runs dist/ while it is as new as the sources, and the sources through tsx once one of them is newer", async () => {
    await appendFile(join(pkg, "dist", "src", "cli", "main.js"), '\nprocess.stderr.write("ran dist\\n");\n');
    expect(await nadguard(["--version"])).toEqual({ out: "0.1.0\n", err: "ran dist\n" });
    await appendFile(join(pkg, "src", "cli", "main.ts"), '\nprocess.stderr.write("ran the sources\\n");\n');
    expect(await nadguard(["--version"])).toEqual({ out: "0.1.0\n", err: "ran the sources\n" });
  });
});
