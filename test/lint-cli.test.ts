// `nadguard lint` as a CI job runs it: a process on a state directory. The example cluster has no
// error finding (exit 0); a directory with a policy for a missing NAD, one for a NAD whose CNI type
// is not enforced, and a redundant rule exits 3 with each finding on its own line; bad input exits 2.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gridYaml, policy } from "./policy-conformance/grid.js";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "bin", "nadguard.js");
const EXAMPLE = join(import.meta.dirname, "..", "examples", "cluster");

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-lint-cli-"));
  await mkdir(join(dir, "state"));
  await writeFile(join(dir, "state", "grid.yaml"), gridYaml());
  const policies = [
    policy("x", "typo", { podSelector: {}, policyTypes: ["Ingress"] }, "nets/bleu"),
    policy("y", "twice", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }, { from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "a" } } }], ports: [{ port: 80 }] }] }),
  ];
  await writeFile(join(dir, "state", "policies.yaml"), policies.map((p) => stringify(p)).join("---\n"));
  await writeFile(join(dir, "ipvlan-only.yaml"), "enforcement:\n  networkPlugins: [ipvlan]\n");
  await writeFile(join(dir, "bad-config.yaml"), "enforcement:\n  plugins: [ipvlan]\n");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function lint(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, "lint", ...args]);
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout, err: failed.stderr };
  }
}

const PF = 'metadata.annotations["k8s.v1.cni.cncf.io/policy-for"]';

describe("nadguard lint", () => {
  it("finds no error in the example cluster: exit 0", async () => {
    const r = await lint("--state", EXAMPLE);
    expect(r.code).toBe(0);
    expect(r.out).toBe("0 errors, 0 warnings in 2 policies\n");
  });

  it("exits 3 with the error findings, one line each with severity, object, place, what to do and code", async () => {
    const r = await lint("--state", join(dir, "state"));
    expect(r.code).toBe(3);
    expect(r.out.split("\n")).toEqual([
      `error    MultiNetworkPolicy x/typo  ${PF}: names NAD nets/bleu, which does not exist, so the policy protects nothing on it; correct the name or create the NAD (NADs of nets: blue, red) (lint.nad-missing)`,
      "warning  MultiNetworkPolicy y/twice  spec.ingress[1]: allows nothing that spec.ingress[0] does not allow already; remove it, or narrow spec.ingress[0] if it allows more than meant (lint.redundant-rule)",
      "1 error, 1 warning in 2 policies",
      "",
    ]);
  });

  it("reads enforcement.networkPlugins from --config, and prints JSON", async () => {
    const r = await lint("--state", join(dir, "state"), "--config", join(dir, "ipvlan-only.yaml"), "--output", "json");
    expect(r.code).toBe(3);
    const json = JSON.parse(r.out) as { policies: number; errors: number; warnings: number; findings: { severity: string; code: string; object: string; path: string; message: string }[] };
    expect({ policies: json.policies, errors: json.errors, warnings: json.warnings }).toEqual({ policies: 2, errors: 2, warnings: 1 });
    expect(json.findings[1]).toEqual({
      severity: "error",
      code: "lint.nad-not-enforced",
      object: "MultiNetworkPolicy y/twice",
      path: PF,
      message: "NAD nets/blue has CNI type macvlan, which is not in enforcement.networkPlugins (ipvlan), so the policy is not enforced on it; enforce that type (enforcement.networkPlugins) or guard this network another way",
    });
  });

  it("takes the state directory as its argument too, as `nadguard lint examples/cluster`", async () => {
    const r = await lint(EXAMPLE);
    expect(r.code).toBe(0);
    expect(r.out).toBe("0 errors, 0 warnings in 2 policies\n");
    const typo = await lint(join(dir, "state"));
    expect(typo.code).toBe(3);
    expect(typo.out).toContain("(lint.nad-missing)");
  });

  it("exits 2 on bad input", async () => {
    for (const [args, message] of [
      [[], "--state is required"],
      [[EXAMPLE, "--state", EXAMPLE], "lint takes one state directory: --state DIR or DIR, not both"],
      [[EXAMPLE, EXAMPLE], "lint takes one state directory: --state DIR or DIR, not both"],
      [["--state", join(dir, "no-such-dir")], "no such directory"],
      [["--state", EXAMPLE, "--output", "yaml"], "--output yaml: expected text or json"],
      [["--state", EXAMPLE, "--config", join(dir, "bad-config.yaml")], "plugins"],
    ] as const) {
      const r = await lint(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.err).toContain(message);
    }
  });
});
