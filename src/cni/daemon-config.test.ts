// The daemon config file: the documented defaults (README, nadguard node), JSON and YAML alike, and refusals
// that name the file and the key.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InputError } from "../api/errors.js";
import { DEFAULT_DAEMON_CONFIG, loadDaemonConfig } from "./daemon-config.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-daemon-config-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the daemon config", () => {
  it("has README's defaults without a file", async () => {
    expect(await loadDaemonConfig(undefined)).toEqual(DEFAULT_DAEMON_CONFIG);
    expect(DEFAULT_DAEMON_CONFIG).toEqual({
      socketDir: "/run/nadguard",
      cniConfigDir: "/etc/cni/net.d",
      multusAutoconfigDir: "/etc/cni/net.d",
      binDir: "/opt/cni/bin",
      cniDir: "/var/lib/cni/nadguard",
      defaultNetworks: [],
      multusNamespace: "kube-system",
      systemNamespaces: ["kube-system"],
      namespaceIsolation: false,
      globalNamespaces: ["default"],
      deviceCheckpoint: "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint",
    });
  });

  it("reads JSON (Multus' daemon-config.json names) and YAML; multusAutoconfigDir follows cniConfigDir", async () => {
    await writeFile(join(dir, "d.json"), JSON.stringify({ cniConfigDir: "/etc/x", clusterNetwork: "cbr0", namespaceIsolation: true, readinessindicatorfile: "/run/ready" }));
    expect(await loadDaemonConfig(join(dir, "d.json"))).toMatchObject({ cniConfigDir: "/etc/x", multusAutoconfigDir: "/etc/x", clusterNetwork: "cbr0", namespaceIsolation: true, readinessindicatorfile: "/run/ready" });
    await writeFile(join(dir, "d.yaml"), "multusAutoconfigDir: /etc/y\ndefaultNetworks: [a, b/c]\n");
    expect(await loadDaemonConfig(join(dir, "d.yaml"))).toMatchObject({ cniConfigDir: "/etc/cni/net.d", multusAutoconfigDir: "/etc/y", defaultNetworks: ["a", "b/c"] });
  });

  it("refuses an unknown key and a wrong type, naming the file and the key", async () => {
    const file = join(dir, "bad.yaml");
    await writeFile(file, "socketdir: /x\nnamespaceIsolation: yes please\n");
    const error = await loadDaemonConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toContain(`${file}: namespaceIsolation: `);
    expect((error as InputError).message).toContain('socketdir');
  });
});
