import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "./io.js";
import { loadKubeConfig, parseFailurePolicy } from "./kube.js";

const KUBECONFIG = `
apiVersion: v1
kind: Config
clusters:
  - name: prod
    cluster: { server: "https://prod.example:6443", insecure-skip-tls-verify: true }
  - name: lab
    cluster: { server: "https://lab.example:6443", insecure-skip-tls-verify: true }
users:
  - name: me
    user: { token: abc }
contexts:
  - name: prod
    context: { cluster: prod, user: me }
  - name: lab
    context: { cluster: lab, user: me }
current-context: prod
`;

let dir: string;
let file: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-kube-"));
  file = join(dir, "config");
  await writeFile(file, KUBECONFIG);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadKubeConfig", () => {
  it("reads --kubeconfig and honours --context", () => {
    expect(loadKubeConfig({ kubeconfig: file }).getCurrentCluster()?.server).toBe("https://prod.example:6443");
    expect(loadKubeConfig({ kubeconfig: file, context: "lab" }).getCurrentCluster()?.server).toBe("https://lab.example:6443");
  });

  it.each([
    [{ kubeconfig: "x", inCluster: true }, "--in-cluster and --kubeconfig exclude each other"],
    [{ inCluster: true, context: "lab" }, "--context needs a kubeconfig"],
  ])("refuses %j", (flags, message) => {
    expect(() => loadKubeConfig(flags)).toThrow(message);
  });

  it("names a missing context and the ones there are", () => {
    expect(() => loadKubeConfig({ kubeconfig: file, context: "staging" })).toThrow("--context staging: no such context (have: prod, lab)");
  });

  it("says which file it could not load", () => {
    const missing = join(dir, "missing");
    expect(() => loadKubeConfig({ kubeconfig: missing })).toThrow(UsageError);
    expect(() => loadKubeConfig({ kubeconfig: missing })).toThrow(`cannot load ${missing}`);
  });
});

describe("parseFailurePolicy", () => {
  it("defaults to fail-closed and accepts fail-open", () => {
    expect(parseFailurePolicy(undefined)).toBe("fail-closed");
    expect(parseFailurePolicy("fail-open")).toBe("fail-open");
    expect(() => parseFailurePolicy("open")).toThrow("--sar-failure-policy open: expected fail-closed or fail-open");
  });
});
