import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { removeNadguardConf, syncNadguardConf } from "./conf-file.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-conf-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BRIDGE = { cniVersion: "0.4.0", name: "k8s-pod-network", plugins: [{ type: "bridge" }, { type: "portmap", capabilities: { portMappings: true } }, { type: "bandwidth", capabilities: { bandwidth: true, other: false } }] };

describe("00-nadguard.conflist", () => {
  it("points at the first readable config by name, with its capabilities and the pod annotations", async () => {
    await writeFile(join(dir, "05-broken.conf"), "{");
    await writeFile(join(dir, "10-bridge.conflist"), JSON.stringify(BRIDGE));
    await writeFile(join(dir, "99-loopback.conf"), JSON.stringify({ cniVersion: "1.0.0", name: "lo", type: "loopback" }));
    await writeFile(join(dir, "README"), "not a config");
    const synced = await syncNadguardConf(dir, "/run/nadguard");
    expect(synced).toEqual({
      ok: true,
      value: { outcome: "written", path: join(dir, "00-nadguard.conflist"), clusterNetwork: join(dir, "10-bridge.conflist"), skipped: [expect.stringContaining(`${join(dir, "05-broken.conf")}: is not valid JSON`)] },
    });
    expect(JSON.parse(await readFile(join(dir, "00-nadguard.conflist"), "utf8"))).toEqual({
      cniVersion: "1.0.0",
      name: "nadguard",
      plugins: [
        {
          type: "nadguard-cni",
          daemonSocketDir: "/run/nadguard",
          clusterNetwork: join(dir, "10-bridge.conflist"),
          capabilities: { portMappings: true, bandwidth: true, "io.kubernetes.cri.pod-annotations": true },
        },
      ],
    });
    expect((await stat(join(dir, "00-nadguard.conflist"))).mode & 0o777).toBe(0o644);
    expect((await readdir(dir)).filter((f) => f.startsWith("."))).toEqual([]);
  });

  it("rewrites only when the cluster network changes, and keeps the file when there is none", async () => {
    await writeFile(join(dir, "10-bridge.conflist"), JSON.stringify(BRIDGE));
    expect((await syncNadguardConf(dir, "/run/nadguard")).ok).toBe(true);
    const before = await stat(join(dir, "00-nadguard.conflist"));
    expect(await syncNadguardConf(dir, "/run/nadguard")).toMatchObject({ ok: true, value: { outcome: "unchanged" } });
    expect((await stat(join(dir, "00-nadguard.conflist"))).ino).toBe(before.ino);

    await writeFile(join(dir, "10-bridge.conflist"), JSON.stringify({ ...BRIDGE, plugins: [{ type: "bridge", capabilities: { ips: true } }] }));
    expect(await syncNadguardConf(dir, "/run/nadguard")).toMatchObject({ ok: true, value: { outcome: "written" } });
    expect(JSON.parse(await readFile(join(dir, "00-nadguard.conflist"), "utf8")).plugins[0].capabilities).toEqual({ ips: true, "io.kubernetes.cri.pod-annotations": true });

    await rm(join(dir, "10-bridge.conflist"));
    expect(await syncNadguardConf(dir, "/run/nadguard")).toMatchObject({ ok: true, value: { outcome: "kept" } });
    expect(await readdir(dir)).toEqual(["00-nadguard.conflist"]);
  });

  it("is removed by an uninstall, and an uninstall without it is fine", async () => {
    await writeFile(join(dir, "10-bridge.conflist"), JSON.stringify(BRIDGE));
    await syncNadguardConf(dir, "/run/nadguard");
    expect(await removeNadguardConf(dir)).toEqual({ ok: true, value: true });
    expect(await removeNadguardConf(dir)).toEqual({ ok: true, value: false });
    expect(await readdir(dir)).toEqual(["10-bridge.conflist"]);
  });
});
