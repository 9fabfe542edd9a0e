// The native nft executor (native/nft, src/nft/addon.ts) against the kernel, in network namespaces
// of this run's own (`ngad-<pid>-<random>-N`, removed in afterAll whatever happens): what it applies
// is read back with the nft binary inside each netns, no thread of this process is left in a pod's
// netns, a failing script applies nothing and its error names the operation as `nft -f` does, and
// nadguard really uses the addon here (root, built by `npm ci` / scripts/system-deps.sh): a silent
// fallback to `nft -f` processes fails this file.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, constants, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDON_ENV, AddonNftExecutor, addonConcurrency, chooseNftExecutor, defaultNftExecutor, loadNftAddon } from "./addon.js";
import { ExecNftExecutor } from "./exec.js";
import { Nft } from "./nft.js";
import { chain, element, rule } from "./objects.js";

const isRoot = process.getuid?.() === 0;
const prefix = `ngad-${process.pid}-${randomBytes(3).toString("hex")}`;
const made: string[] = [];

function netns(suffix: string): string {
  const name = `${prefix}-${suffix}`;
  execFileSync("ip", ["netns", "add", name]);
  made.push(name);
  return name;
}

/** `nft list table inet NAME` inside the netns, by the nft binary: what the kernel holds. */
function kernelTable(ns: string | undefined, name = "nadguard"): { status: number | null; stdout: string; stderr: string } {
  const argv = ["nft", "list", "table", "inet", name];
  const child = ns === undefined ? spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" }) : spawnSync("nsenter", [`--net=/run/netns/${ns}`, ...argv], { encoding: "utf8" });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}

/** The netns link of every thread of this process (the main thread and libuv's workers). */
function threadNetns(): string[] {
  return readdirSync("/proc/self/task").map((task) => readlinkSync(`/proc/self/task/${task}/ns/net`));
}

describe.skipIf(!isRoot)("the native nft executor", () => {
  const loaded = loadNftAddon();
  const executor = loaded.ok ? new AddonNftExecutor(loaded.value) : undefined;
  const host = readlinkSync("/proc/thread-self/ns/net");
  let ns: string;

  beforeAll(() => {
    ns = netns("a");
  });

  afterAll(() => {
    for (const name of made) spawnSync("ip", ["netns", "delete", name], { stdio: "ignore" });
  });

  it("is what nadguard applies through here: built, loaded, chosen (no silent fallback to nft -f)", () => {
    expect(loaded.ok ? "loaded" : loaded.error).toBe("loaded");
    expect(defaultNftExecutor()).toMatchObject({ kind: "addon", message: "nft executor: native addon (libnftables on a worker thread, setns into each netns)" });
    expect(defaultNftExecutor().executor).toBeInstanceOf(AddonNftExecutor);
    // libnftables' sendmsg goes through the addon, which lets commits (and their kernel waits) overlap.
    expect(loaded.ok && loaded.value.parallelCommits).toBe(true);
  });

  it("applies a transaction inside the netns, read back from the kernel there, and leaves every thread in its own netns", async () => {
    const nft = new Nft({ netns: ns, executor: executor! });
    const tx = nft
      .transaction()
      .add({ kind: "table" })
      .add({ kind: "set", name: "allow4", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] })
      .add(chain("input", { type: "filter", hook: "input", priority: 0, policy: "accept" }))
      .add(element("allow4", ["198.18.0.0/24", "tcp", "80-90"]))
      .add(rule("input", "ip saddr . meta l4proto . th dport @allow4 accept", "allow a"));
    expect(await nft.run(tx)).toEqual({ ok: true, value: undefined });
    const listed = kernelTable(ns);
    expect(listed.status).toBe(0);
    expect(listed.stdout).toContain("elements = { 198.18.0.0/24 . tcp . 80-90 }");
    expect(listed.stdout).toContain('ip saddr . meta l4proto . th dport @allow4 accept comment "allow a"');
    expect(kernelTable(undefined).status).toBe(1);
    expect(readlinkSync("/proc/thread-self/ns/net")).toBe(host);
    expect(new Set(threadNetns())).toEqual(new Set([host]));
  });

  it("puts 50 concurrent transactions each in its own netns, none in the host's", async () => {
    const many = Array.from({ length: 50 }, (_, i) => netns(`m${i}`));
    const name = `${prefix}-m`;
    // Each builds sets and a rule bound to one of them in the same batch (libnftables numbers new
    // sets per batch), then deletes an element (a commit that waits in the kernel, lock released).
    const results = await Promise.all(
      many.map(async (target, i) => {
        const nft = new Nft({ netns: target, table: name, executor: executor! });
        const built = await nft.run(
          nft
            .transaction()
            .add({ kind: "table" })
            .add([{ kind: "set", name: "other", type: "ipv4_addr" }, { kind: "set", name: "owner", type: "ipv4_addr" }])
            .add(chain("input", { type: "filter", hook: "input", priority: 0, policy: "accept" }))
            .add([element("owner", [`198.18.1.${i + 1}`]), element("owner", [`198.18.2.${i + 1}`])])
            .add(rule("input", "ip saddr @owner accept")),
        );
        return built.ok ? nft.run(nft.transaction().delete(element("owner", [`198.18.2.${i + 1}`]))) : built;
      }),
    );
    expect(results.filter((r) => !r.ok)).toEqual([]);
    many.forEach((target, i) => {
      const listed = kernelTable(target, name);
      expect(listed.stdout, target).toMatch(new RegExp(`set owner \\{\\n\\s+type ipv4_addr\\n\\s+elements = \\{ 198\\.18\\.1\\.${i + 1} \\}`));
      expect(listed.stdout, target).toContain("ip saddr @owner accept");
    });
    expect(kernelTable(undefined, name).status).toBe(1);
    expect(new Set(threadNetns())).toEqual(new Set([host]));
  });

  it("applies nothing of a script that fails in the middle, and maps the error to the operation as nft -f does", async () => {
    const tx = (nft: Nft): ReturnType<Nft["transaction"]> =>
      nft
        .transaction()
        .add(element("allow4", ["198.18.9.0/24", "udp", "53-54"]))
        .add(chain("pod-b"))
        .add(rule("pod-b", "ip saddr . meta l4proto . th dport @allow9 accept"))
        .add(rule("pod-b", "drop"));
    const before = kernelTable(ns).stdout;
    const viaAddon = new Nft({ netns: ns, executor: executor! });
    const failed = await viaAddon.run(tx(viaAddon));
    expect(failed.ok).toBe(false);
    if (failed.ok) return;
    expect(failed.error).toMatchObject({
      code: "nft.not-found",
      line: 3,
      opIndex: 2,
      path: `netns ${ns}, line 3`,
      message: "No such file or directory; did you mean set ‘allow4’ in table inet ‘nadguard’?: add rule inet nadguard pod-b ip saddr . meta l4proto . th dport @allow9 accept",
    });
    expect(kernelTable(ns).stdout).toBe(before);
    const viaProcesses = new Nft({ netns: ns, executor: new ExecNftExecutor() });
    const same = await viaProcesses.run(tx(viaProcesses));
    const { stderr: _a, details: _b, ...addonError } = failed.error;
    expect(!same.ok && (({ stderr: _c, details: _d, ...rest }) => rest)(same.error)).toEqual(addonError);
  });

  it("checks without applying (nft --check)", async () => {
    const nft = new Nft({ netns: ns, executor: executor! });
    expect(await nft.check(nft.transaction().add(element("allow4", ["198.18.7.7", "tcp", "7"])))).toEqual({ ok: true, value: undefined });
    expect(kernelTable(ns).stdout).not.toContain("198.18.7.7");
  });

  it("reports a netns that does not exist as a clear exec error", async () => {
    const missing = `/run/netns/${prefix}-absent`;
    const nft = new Nft({ netns: missing, executor: executor! });
    const result = await nft.run(nft.transaction().add({ kind: "table" }));
    expect(!result.ok && result.error).toMatchObject({ code: "nft.exec", path: `netns ${missing}`, message: `cannot open network namespace ${missing}: No such file or directory` });
    const listing = await nft.list();
    expect(!listing.ok && listing.error.code).toBe("nft.exec");
  });

  it("fails a call that outlives its time limit, says once that it falls back, and applies through nft -f processes from then on", async () => {
    // A netns path that is a FIFO: the worker thread's open(2) blocks until a writer comes, a thread really stuck in the addon.
    const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    const fifo = join(dir, "stuck");
    execFileSync("mkfifo", [fifo]);
    const processes = new ExecNftExecutor();
    const viaProcesses: string[] = [];
    const limited = new AddonNftExecutor(loaded.ok ? loaded.value : (undefined as never), {
      timeoutMs: 300,
      fallback: () => ({
        run: (script, opts) => (viaProcesses.push(`run ${opts.netns}`), processes.run(script, opts)),
        list: (table, opts) => (viaProcesses.push(`list ${opts.netns}`), processes.list(table, opts)),
      }),
    });
    const said: string[] = [];
    limited.onFallback((line) => said.push(line));
    try {
      expect(limited.fallenBack).toBeUndefined();
      expect(await limited.run("add table inet nadguard\n", { netns: fifo })).toEqual({
        exitCode: -1,
        stdout: "",
        stderr: `the native nft addon did not finish within 300 ms in ${fifo}; nadguard applies through nft -f processes from now on\n`,
      });
      expect(said).toEqual([`nft executor: nft -f processes from now on, because the native nft addon did not finish within 300 ms in ${fifo} (its worker thread cannot be stopped and may hold the addon's lock on libnftables)`]);
      expect(limited.fallenBack).toBe(`the native nft addon did not finish within 300 ms in ${fifo}`);
      const other = netns("stuck-after");
      const nft = new Nft({ netns: other, executor: limited });
      expect(await nft.run(nft.transaction().add({ kind: "table" }).add({ kind: "set", name: "s", type: ["ipv4_addr"] }).add(element("s", ["198.18.9.9"])))).toEqual({ ok: true, value: undefined });
      expect(kernelTable(other).stdout).toContain("elements = { 198.18.9.9 }");
      expect((await nft.list({ elements: true })).ok).toBe(true);
      expect(viaProcesses).toEqual([`run ${other}`, `list ${other}`]);
      expect(said).toHaveLength(1);
    } finally {
      // Let the stuck open(2) return (setns then fails on a FIFO): the thread goes back to libuv's pool.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lists exactly as the nft processes do", async () => {
    const processes = new ExecNftExecutor();
    const table = { family: "inet", name: "nadguard" } as const;
    for (const opts of [{}, { elements: true }, { elements: true, text: true }, { text: true }]) {
      const viaAddon = await executor!.list(table, { ...opts, netns: ns });
      expect(viaAddon.ok).toBe(true);
      expect(viaAddon).toEqual(await processes.list(table, { ...opts, netns: ns }));
    }
    const missing = await executor!.list({ family: "inet", name: "nadguard-none" }, { netns: ns, elements: true, text: true });
    expect(missing).toEqual(await processes.list({ family: "inet", name: "nadguard-none" }, { netns: ns, elements: true, text: true }));
    expect(!missing.ok && missing.error.reason).toBe("not-found");
  });
});

describe("choosing the executor", () => {
  it.each([
    [true, undefined, 3],
    [true, "9", 8],
    [true, "1", 1],
    [true, "many", 3],
    [false, "9", 1],
  ])("with parallel commits %s and UV_THREADPOOL_SIZE %s, runs %i addon calls at once", (parallelCommits, threads, expected) => {
    expect(addonConcurrency({ parallelCommits }, threads)).toBe(expected);
  });

  it(`falls back to nft -f processes, saying why, when ${ADDON_ENV} names no usable addon`, () => {
    const file = join(import.meta.dirname, "no-such-addon.node");
    const choice = chooseNftExecutor(loadNftAddon(file));
    expect(choice.kind).toBe("nft -f");
    expect(choice.executor).toBeInstanceOf(ExecNftExecutor);
    expect(choice.message).toMatch(new RegExp(`^nft executor: nft -f processes \\(nsenter --net=PATH nft -f FILE\\), because the native addon cannot be used: cannot load ${file}: Cannot find module`));
    expect(chooseNftExecutor(loadNftAddon("none")).reason).toBe(`${ADDON_ENV}=none`);
  });
});
