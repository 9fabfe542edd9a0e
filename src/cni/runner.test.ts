// The runner against the fake exec: what each plugin of a list receives (stdin and environment,
// exactly as a real plugin would read them), in which order, and what is left in the cache.
import { writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type NetworkConfigList, parseNetworkConfig } from "./config.js";
import { formatCniError } from "./errors.js";
import { type FakeAnswer, type FakeCall, FakePluginExec } from "./fake.js";
import { SpawnPluginExec } from "./exec.js";
import { CniRunner, type RuntimeConf } from "./runner.js";

const BIN = "/fake/cni/bin";
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-cni-runner-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function list(config: unknown): NetworkConfigList {
  const parsed = parseNetworkConfig(config, "test");
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return parsed.value;
}

const RT: RuntimeConf = {
  containerId: "c0ffee",
  netns: "/run/netns/pod",
  ifname: "net1",
  args: [
    ["IgnoreUnknown", "1"],
    ["K8S_POD_NAME", "web"],
  ],
  capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }], mac: "02:00:00:00:00:01", bandwidth: { ingressRate: 1000 } },
};

const result100 = (ifname: string, address: string): unknown => ({
  cniVersion: "1.0.0",
  interfaces: [{ name: ifname, mac: "02:00:00:00:00:01", sandbox: "/run/netns/pod" }],
  ips: [{ interface: 0, address, gateway: "198.18.0.1" }],
});

/** A plugin that answers ADD with `result` (or passes prevResult through) and anything else with success. */
const plugin =
  (result?: unknown) =>
  (call: FakeCall): FakeAnswer =>
    call.command === "ADD" ? { result: result ?? call.config.prevResult } : { ok: true };

const THREE = {
  cniVersion: "0.4.0",
  name: "lan",
  plugins: [
    { type: "bridge", cniVersion: "0.3.1", bridge: "br0", ipam: { type: "host-local" }, args: { cni: { ips: ["198.18.0.9"] } } },
    { type: "tuning", capabilities: { mac: true, bandwidth: false }, runtimeConfig: { mac: "02:ff:ff:ff:ff:ff" } },
    { type: "portmap", capabilities: { portMappings: true, ips: true }, runtimeConfig: { keep: "mine" } },
  ],
};

/** THREE added for RT, the calls so far forgotten. */
async function addedThree(): Promise<{ exec: FakePluginExec; runner: CniRunner }> {
  const exec = new FakePluginExec({ bridge: plugin(result100("net1", "198.18.0.9/24")), tuning: plugin(), portmap: plugin() });
  const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
  await runner.add(list(THREE), RT);
  exec.calls.length = 0;
  return { exec, runner };
}

describe("ADD", () => {
  it("gives each plugin the list's name and version, the previous result, and only the capability arguments it declares", async () => {
    const exec = new FakePluginExec({ bridge: plugin(result100("net1", "198.18.0.9/24")), tuning: plugin(), portmap: plugin() });
    const runner = new CniRunner({ pluginDirs: ["/nowhere", BIN], cacheDir: dir, exec, env: { PATH: "/usr/bin", CNI_COMMAND: "stale" } });
    const added = await runner.add(list(THREE), RT);

    expect(added.ok).toBe(true);
    expect(exec.calls.map((c) => `${c.command} ${c.type}`)).toEqual(["ADD bridge", "ADD tuning", "ADD portmap"]);
    const [bridge, tuning, portmap] = exec.calls;
    expect(bridge!.config).toEqual({ ...THREE.plugins[0], cniVersion: "0.4.0", name: "lan" });
    // The plugin answered 1.0.0; the next plugin gets that answer as it was given.
    const first = { cniVersion: "1.0.0", interfaces: [{ name: "net1", mac: "02:00:00:00:00:01", sandbox: "/run/netns/pod" }], ips: [{ interface: 0, address: "198.18.0.9/24", gateway: "198.18.0.1" }] };
    expect(tuning!.config).toEqual({ type: "tuning", capabilities: { mac: true, bandwidth: false }, name: "lan", cniVersion: "0.4.0", prevResult: first, runtimeConfig: { mac: "02:00:00:00:00:01" } });
    // Declared `ips` has no value: left out; the runtime's portMappings replace the written runtimeConfig.
    expect(portmap!.config.runtimeConfig).toEqual({ portMappings: RT.capabilityArgs!.portMappings });
    expect(portmap!.config.prevResult).toEqual(first);
    expect(added).toEqual({ ok: true, value: first });
    expect(bridge!.env).toEqual({
      PATH: "/usr/bin",
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "c0ffee",
      CNI_NETNS: "/run/netns/pod",
      CNI_IFNAME: "net1",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web",
      CNI_PATH: `/nowhere:${BIN}`,
    });
  });

  it("keeps a runtimeConfig written in the config when the runtime gives none of the plugin's capabilities", async () => {
    const exec = new FakePluginExec({ tuning: plugin(result100("net1", "198.18.0.2/24")) });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    await runner.add(list({ cniVersion: "1.0.0", name: "n", plugins: [{ type: "tuning", capabilities: { mac: true }, runtimeConfig: { mac: "02:aa:aa:aa:aa:aa" } }] }), { ...RT, capabilityArgs: { ips: ["198.18.0.2/24"] } });
    expect(exec.calls[0]!.config.runtimeConfig).toEqual({ mac: "02:aa:aa:aa:aa:aa" });
  });

  it("caches the config as run and the result in a 0600 file named network-container-ifname", async () => {
    const exec = new FakePluginExec({ bridge: plugin(result100("net1", "198.18.0.9/24")), tuning: plugin(), portmap: plugin() });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    await runner.add(list(THREE), RT);
    const file = join(dir, "results", "lan-c0ffee-net1");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, "results"))).toEqual(["lan-c0ffee-net1"]);
    const cached = JSON.parse(await readFile(file, "utf8"));
    expect(JSON.parse(Buffer.from(cached.config, "base64").toString())).toEqual(THREE);
    expect(cached).toMatchObject({ kind: "cniCacheV1", containerId: "c0ffee", ifName: "net1", networkName: "lan", netns: "/run/netns/pod", cniArgs: RT.args, capabilityArgs: RT.capabilityArgs });
    expect(cached.result.ips).toEqual([{ interface: 0, address: "198.18.0.9/24", gateway: "198.18.0.1" }]);
  });

  it("with a cacheWrite hook, hands over the result cache's write and returns the result; the file is there once it settles, and its error is ADD's", async () => {
    const exec = new FakePluginExec({ bridge: plugin(result100("net1", "198.18.0.9/24")), tuning: plugin(), portmap: plugin() });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    const writes: Promise<unknown>[] = [];
    const added = await runner.add(list(THREE), RT, { cacheWrite: (written) => writes.push(written) });
    expect(added.ok).toBe(true);
    expect(writes).toHaveLength(1);
    expect(await writes[0]).toEqual({ ok: true, value: undefined });
    expect(await readdir(join(dir, "results"))).toEqual(["lan-c0ffee-net1"]);
    // A results directory that cannot be made: the write's error names the file, as ADD's own would.
    const blocked = new CniRunner({ pluginDirs: [BIN], cacheDir: join(dir, "results", "lan-c0ffee-net1"), exec });
    const failed: Promise<unknown>[] = [];
    expect((await blocked.add(list(THREE), RT, { cacheWrite: (written) => failed.push(written) })).ok).toBe(true);
    expect(await failed[0]).toMatchObject({ ok: false, error: { code: 5, network: "lan", command: "ADD", msg: expect.stringContaining(`cannot write the result cache file ${join(dir, "results", "lan-c0ffee-net1", "results", "lan-c0ffee-net1")}`) } });
    expect(await blocked.add(list(THREE), RT)).toMatchObject({ ok: false, error: { code: 5, network: "lan", command: "ADD" } });
  });

  it("stops at a failing plugin with its code, message and details, and caches nothing", async () => {
    const exec = new FakePluginExec({
      bridge: plugin(result100("net1", "198.18.0.9/24")),
      tuning: () => ({ error: { code: 7, msg: "invalid mac", details: "02:zz is not a MAC" } }),
      portmap: plugin(),
    });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    const added = await runner.add(list(THREE), RT);
    expect(added).toEqual({ ok: false, error: { code: 7, msg: "invalid mac", details: "02:zz is not a MAC", plugin: "tuning", network: "lan", command: "ADD" } });
    expect(added.ok ? "" : formatCniError(added.error)).toBe('plugin type="tuning" name="lan" failed (add): invalid mac; 02:zz is not a MAC');
    expect(exec.calls.map((c) => c.type)).toEqual(["bridge", "tuning"]);
    expect(await readdir(dir)).toEqual([]);
  });

  it("calls onStart once, when the first plugin's process has started and before it answers (a real process)", async () => {
    const bin = join(dir, "bin");
    await mkdir(bin);
    // Answers only once the caller has seen the start: the file onStart writes.
    const started = join(dir, "started");
    await writeFile(join(bin, "slow"), `#!/bin/sh\nwhile [ ! -e ${started} ]; do sleep 0.01; done\necho '{"cniVersion":"1.0.0","ips":[{"address":"198.18.0.7/24"}]}'\n`, { mode: 0o755 });
    await writeFile(join(bin, "second"), `#!/bin/sh\nread -r config\necho '{"cniVersion":"1.0.0","ips":[{"address":"198.18.0.7/24"}]}'\n`, { mode: 0o755 });
    const runner = new CniRunner({ pluginDirs: [bin], cacheDir: dir, exec: new SpawnPluginExec(), env: { PATH: "/usr/bin:/bin" } });
    let calls = 0;
    const added = await runner.add(list({ cniVersion: "1.0.0", name: "n", plugins: [{ type: "slow" }, { type: "second" }] }), RT, {
      onStart: () => {
        calls++;
        writeFileSync(started, "");
      },
    });
    expect({ ok: added.ok, calls }).toEqual({ ok: true, calls: 1 });
  });

  it("names the type and every directory searched when a plugin binary is missing", async () => {
    const runner = new CniRunner({ pluginDirs: ["/opt/cni/bin", "/usr/lib/cni"], cacheDir: dir, exec: new FakePluginExec({}) });
    const added = await runner.add(list({ cniVersion: "1.0.0", name: "n", type: "sriov" }), RT);
    expect(added).toEqual({
      ok: false,
      error: { code: 999, msg: 'no plugin binary "sriov" in the plugin path: searched /opt/cni/bin, /usr/lib/cni', plugin: "sriov", command: "ADD", network: "n" },
    });
  });

  it("reads an error a plugin printed badly as an error quoting it", async () => {
    const exec = new FakePluginExec({
      a: () => ({ exitCode: 2, stdout: "", stderr: "panic: runtime error\n" }),
      b: () => ({ exitCode: 1, stdout: "not json", stderr: "" }),
      c: () => ({ exitCode: 0, stdout: '{"cniVersion":"1.0.0","ips":[{"address":"nope"}]}' }),
    });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    const msg = async (type: string): Promise<string> => {
      const added = await runner.add(list({ cniVersion: "1.0.0", name: "n", type }), RT);
      return added.ok ? "" : `${added.error.code} ${added.error.msg}`;
    };
    expect(await msg("a")).toBe(`999 ${BIN}/a exited with status 2: panic: runtime error`);
    expect(await msg("b")).toBe(`999 ${BIN}/b exited with status 1 and printed something that is not a CNI error: not json`);
    expect(await msg("c")).toBe("6 plugin c printed a result nadguard cannot read: ips[0].address: is not an address with a prefix (e.g. 198.18.0.2/24)");
  });

  it("refuses a container ID that cannot name a cache file before running anything (code 4)", async () => {
    const exec = new FakePluginExec({ bridge: plugin(result100("net1", "198.18.0.9/24")) });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    const added = await runner.add(list({ cniVersion: "1.0.0", name: "n", type: "bridge" }), { ...RT, containerId: "../../etc" });
    expect(added.ok ? undefined : added.error.code).toBe(4);
    expect(added.ok ? "" : added.error.msg).toContain('container ID "../../etc"');
    expect(exec.calls).toEqual([]);
  });

  it("refuses a list in a version whose results it cannot read (code 1)", async () => {
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec: new FakePluginExec({ bridge: plugin() }) });
    const added = await runner.add(list({ cniVersion: "0.2.0", name: "old", type: "bridge" }), RT);
    expect(added).toEqual({ ok: false, error: { code: 1, msg: 'network "old" asks for CNI 0.2.0; nadguard runs 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0', network: "old", command: "ADD" } });
  });
});

describe("DEL", () => {
  it("runs the plugins in reverse with the cached result in the list's version, then removes the cache file", async () => {
    const { exec, runner } = await addedThree();
    const deleted = await runner.del(list(THREE), { ...RT, netns: "" });
    expect(deleted).toEqual({ ok: true, value: { warnings: [] } });
    expect(exec.calls.map((c) => `${c.command} ${c.type}`)).toEqual(["DEL portmap", "DEL tuning", "DEL bridge"]);
    // The cached 1.0.0 result converted to the list's 0.4.0: each IP gets its version.
    const prev = { cniVersion: "0.4.0", interfaces: [{ name: "net1", mac: "02:00:00:00:00:01", sandbox: "/run/netns/pod" }], ips: [{ version: "4", interface: 0, address: "198.18.0.9/24", gateway: "198.18.0.1" }], dns: {} };
    expect(exec.calls.map((c) => c.config.prevResult)).toEqual([prev, prev, prev]);
    expect(exec.calls[0]!.env.CNI_NETNS).toBe("");
    expect(exec.calls[0]!.config.runtimeConfig).toEqual({ portMappings: RT.capabilityArgs!.portMappings });
    expect(await readdir(join(dir, "results"))).toEqual([]);

    exec.calls.length = 0;
    expect(await runner.del(list(THREE), RT)).toEqual({ ok: true, value: { warnings: [] } });
    expect(exec.calls.map((c) => c.config.prevResult)).toEqual([undefined, undefined, undefined]);
  });

  it("deletes without prevResult when the cache file is corrupt, says so, and removes the file", async () => {
    const exec = new FakePluginExec({ bridge: plugin() });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    const file = join(dir, "results", "n-c0ffee-net1");
    await runner.cache.write({ network: "n", containerId: "c0ffee", ifname: "net1", config: "{}" });
    await writeFile(file, '{"kind":"cniCacheV1","containerId":"c0ff');
    const deleted = await runner.del(list({ cniVersion: "1.0.0", name: "n", type: "bridge" }), RT);
    expect(deleted.ok && deleted.value.warnings).toEqual([expect.stringContaining(`the result cache file ${file} is unreadable: not JSON`)]);
    expect(exec.calls[0]!.config.prevResult).toBeUndefined();
    expect(await readdir(join(dir, "results"))).toEqual([]);
  });

  it("keeps the cache file when a plugin fails, so a retry still has the result", async () => {
    let fail = true;
    const exec = new FakePluginExec({ bridge: (call) => (call.command === "ADD" ? { result: result100("net1", "198.18.0.9/24") } : fail ? { error: { code: 11, msg: "busy" } } : { ok: true }) });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    const net = list({ cniVersion: "1.0.0", name: "n", type: "bridge" });
    await runner.add(net, RT);
    expect(await runner.del(net, RT)).toMatchObject({ ok: false, error: { code: 11, msg: "busy", plugin: "bridge", command: "DEL" } });
    fail = false;
    await runner.del(net, RT);
    expect(exec.calls.at(-1)!.config.prevResult).toMatchObject({ ips: [{ address: "198.18.0.9/24" }] });
  });
});

describe("CHECK", () => {
  it("runs the plugins in order with the cached result", async () => {
    const { exec, runner } = await addedThree();
    expect(await runner.check(list(THREE), RT)).toEqual({ ok: true, value: undefined });
    expect(exec.calls.map((c) => `${c.command} ${c.type} ${(c.config.prevResult as { cniVersion: string }).cniVersion}`)).toEqual(["CHECK bridge 0.4.0", "CHECK tuning 0.4.0", "CHECK portmap 0.4.0"]);
  });

  it("fails naming the cache file when there is no result to check against", async () => {
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec: new FakePluginExec({ bridge: plugin() }) });
    const checked = await runner.check(list({ cniVersion: "1.0.0", name: "n", type: "bridge" }), RT);
    expect(checked.ok ? "" : checked.error.msg).toBe(`no result of ADD to check against: ${join(dir, "results", "n-c0ffee-net1")} does not exist`);
  });

  it("is skipped with disableCheck, refused before 0.4.0", async () => {
    const exec = new FakePluginExec({ bridge: plugin() });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    expect(await runner.check(list({ cniVersion: "1.0.0", name: "n", disableCheck: "true", plugins: [{ type: "bridge" }] }), RT)).toEqual({ ok: true, value: undefined });
    const old = await runner.check(list({ cniVersion: "0.3.1", name: "n", type: "bridge" }), RT);
    expect(old.ok ? "" : `${old.error.code} ${old.error.msg}`).toBe('1 network "n" is version 0.3.1: CHECK needs 0.4.0 or newer');
    expect(exec.calls).toEqual([]);
  });
});

describe("STATUS and GC", () => {
  it("GC deletes the cached attachments of the network that are not valid, with the values cached at ADD, and passes the valid ones to 1.1.0 plugins", async () => {
    const exec = new FakePluginExec({ bridge: plugin(result100("net1", "198.18.0.9/24")), other: plugin(result100("net1", "198.18.1.9/24")) });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    const net = list({ cniVersion: "1.1.0", name: "n", type: "bridge" });
    await runner.add(net, { ...RT, containerId: "keep" });
    await runner.add(net, { ...RT, containerId: "stale", netns: "/run/netns/stale" });
    await runner.add(list({ cniVersion: "1.1.0", name: "o", type: "other" }), { ...RT, containerId: "stale" });
    exec.calls.length = 0;

    expect(await runner.gc(net, [{ containerId: "keep", ifname: "net1" }])).toEqual({ ok: true, value: undefined });
    expect(exec.calls.map((c) => `${c.command} ${c.type} ${c.env.CNI_CONTAINERID} ${c.env.CNI_NETNS}`)).toEqual(["DEL bridge stale /run/netns/stale", "GC bridge  "]);
    expect(exec.calls[1]!.config["cni.dev/valid-attachments"]).toEqual([{ containerId: "keep", ifname: "net1" }]);
    expect((await readdir(join(dir, "results"))).sort()).toEqual(["n-keep-net1", "o-stale-net1"]);
  });

  it("STATUS reaches 1.1.0 plugins only, and returns the plugin's error", async () => {
    const exec = new FakePluginExec({ bridge: (call) => (call.command === "STATUS" ? { error: { code: 50, msg: "no IPs left" } } : { ok: true }) });
    const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: dir, exec });
    expect(await runner.status(list({ cniVersion: "1.0.0", name: "n", type: "bridge" }))).toEqual({ ok: true, value: undefined });
    expect(exec.calls).toEqual([]);
    expect(await runner.status(list({ cniVersion: "1.1.0", name: "n", type: "bridge" }))).toEqual({ ok: false, error: { code: 50, msg: "no IPs left", plugin: "bridge", command: "STATUS", network: "n" } });
  });
});
