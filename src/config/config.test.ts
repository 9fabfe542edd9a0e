import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../api/errors.js";
import { DEFAULT_CONFIG, loadConfig, parseConfig } from "./config.js";

describe("config", () => {
  it("has secure defaults", () => {
    expect(DEFAULT_CONFIG).toEqual({
      authorization: { mode: "rbac", globalNamespaces: [] },
      resources: { resourceNameKeys: ["k8s.v1.cni.cncf.io/resourceName"], honorExistingResources: false },
      injection: { downwardApi: false, nodeSelector: true },
      enforcement: { networkPlugins: ["macvlan", "ipvlan", "bridge", "sriov", "host-device", "bond", "vlan"], acceptIcmpEcho: false },
      nads: { protectInUse: false },
      multus: { namespace: "kube-system" },
    });
  });

  it("fills in what a partial file leaves out", () => {
    expect(parseConfig({ authorization: { mode: "none" } }).authorization).toEqual({ mode: "none", globalNamespaces: [] });
  });

  it.each([
    [{ authorisation: {} }, 'c.yaml: (top level): Unrecognized key: "authorisation"'],
    [{ authorization: { mode: "rbca" } }, 'c.yaml: authorization.mode: Invalid option: expected one of "rbac"|"namespace-isolation"|"none"'],
    [{ resources: { honorExistingResources: "yes" } }, "c.yaml: resources.honorExistingResources: Invalid input: expected boolean, received string"],
    [{ authorization: { globalNamespaces: [1] } }, "c.yaml: authorization.globalNamespaces[0]: Invalid input: expected string, received number"],
  ])("rejects %j naming the key", (document, message) => {
    expect(() => parseConfig(document, "c.yaml")).toThrow(InputError);
    expect(() => parseConfig(document, "c.yaml")).toThrow(message);
  });

  it("reads YAML files and names a file that is not YAML", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nadguard-config-"));
    try {
      await writeFile(join(dir, "good.yaml"), "authorization:\n  mode: namespace-isolation\n  globalNamespaces: [infra]\n");
      expect((await loadConfig(join(dir, "good.yaml"))).authorization).toEqual({ mode: "namespace-isolation", globalNamespaces: ["infra"] });
      await writeFile(join(dir, "bad.yaml"), "authorization: [\n");
      await expect(loadConfig(join(dir, "bad.yaml"))).rejects.toThrow(`${join(dir, "bad.yaml")}: is not valid YAML`);
      await expect(loadConfig(join(dir, "none.yaml"))).rejects.toThrow("cannot read");
      expect(await loadConfig(undefined)).toBe(DEFAULT_CONFIG);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
