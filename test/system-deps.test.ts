// scripts/system-deps.sh, run as `npm test` and `npm run bench` run it: on this machine (everything
// installed, or installed by it as root) it passes quietly; where packages are missing and it cannot
// install them, it stops at once with one line naming the Debian packages.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const SCRIPT = join(import.meta.dirname, "..", "scripts", "system-deps.sh");
const isRoot = process.getuid?.() === 0;

function run(args: string[], env: NodeJS.ProcessEnv, prefix: string[] = []) {
  // The script comes on stdin, so an unprivileged run needs no read access to the checkout.
  const [command, ...rest] = [...prefix, "/bin/sh", "-s", "--", ...args];
  return spawnSync(command!, rest, { env, encoding: "utf8", input: readFileSync(SCRIPT) });
}

describe("scripts/system-deps.sh", () => {
  const empty = mkdtempSync(join(tmpdir(), "nadguard-deps-"));
  // Only `id` on PATH: every probed command is missing.
  symlinkSync("/usr/bin/id", join(empty, "id"));
  chmodSync(empty, 0o755);
  afterAll(() => rmSync(empty, { recursive: true, force: true }));

  it("lists the packages the suites need, one a line", () => {
    const listed = run(["--list"], process.env);
    expect(listed.status).toBe(0);
    expect(listed.stdout.trim().split("\n")).toEqual(expect.arrayContaining(["nftables", "iproute2", "util-linux", "containernetworking-plugins", "containerd", "runc", "gcc", "libc6-dev", "python3", "make", "pkg-config", "libnftables-dev"]));
  });

  it("passes silently on a machine that has them (npm test ran it first)", () => {
    const checked = run([], process.env);
    expect(checked.stderr).toBe("");
    expect(checked.status).toBe(0);
  });

  it.skipIf(!isRoot)("without root and without the commands, names the missing packages in one line and fails", () => {
    const checked = run([], { PATH: empty }, ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    expect(checked.status).toBe(1);
    const lines = checked.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^nadguard: the tests need these Debian packages, missing here: nftables iproute2 util-linux procps iptables /);
    expect(lines[0]).toContain("(as root: apt-get install nftables iproute2");
  });

  it(".ci/run adds no install step of its own: it runs the README's commands", () => {
    const ci = readFileSync(join(import.meta.dirname, "..", ".ci", "run"), "utf8");
    expect(ci).not.toMatch(/apt-get/);
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts["test"]).toMatch(/^sh scripts\/system-deps\.sh && /);
    expect(pkg.scripts["bench"]).toMatch(/^sh scripts\/system-deps\.sh && /);
  });
});

describe("scripts/build-addon.sh (package.json's install script)", () => {
  const bin = mkdtempSync(join(tmpdir(), "nadguard-addon-path-"));
  // A PATH without pkg-config (so without libnftables-dev, as far as the build can tell).
  for (const command of ["dirname", "rm", "tail"]) symlinkSync(`/usr/bin/${command}`, join(bin, command));
  afterAll(() => rmSync(bin, { recursive: true, force: true }));
  const build = (args: string[]) =>
    spawnSync("/bin/sh", [join(import.meta.dirname, "..", "scripts", "build-addon.sh"), ...args], { env: { PATH: bin }, encoding: "utf8" });

  it("lets npm ci go on where the addon cannot be built: one line, exit 0", () => {
    const result = build([]);
    expect({ status: result.status, stdout: result.stdout }).toEqual({ status: 0, stdout: "" });
    expect(result.stderr).toBe(
      "nadguard: native nft addon not built (libnftables-dev or pkg-config is not installed: apt-get install libnftables-dev pkg-config, then npm run build:addon); nadguard will apply rules through nft -f processes\n",
    );
  });

  it("fails with --required (npm run build:addon, scripts/system-deps.sh)", () => {
    const result = build(["--required"]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^nadguard: cannot build the native nft addon \(native\/nft\): libnftables-dev or pkg-config is not installed/);
  });
});
