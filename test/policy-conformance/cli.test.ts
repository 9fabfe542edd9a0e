// `nadguard render` and `nadguard verdict` on a state directory holding the grid.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRender } from "../../src/cli/render.js";
import { runVerdict, type VerdictOptions } from "../../src/cli/verdict.js";
import { gridYaml, policy } from "./grid.js";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-policy-cli-"));
  await writeFile(join(dir, "grid.yaml"), gridYaml());
  await writeFile(
    join(dir, "policies.yaml"),
    [
      policy("x", "from-y", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }], ports: [{ port: "web" }, { port: 53, protocol: "UDP" }] }] }),
      policy("x", "bad", { podSelector: { matchLabels: { pod: "c" } }, ingress: [{ ports: [{ port: "nope" }] }] }),
    ]
      .map((p) => stringify(p))
      .join("---\n"),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(fn: (out: (l: string) => void, err: (l: string) => void) => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await fn((l) => void out.push(l), (l) => void err.push(l));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const verdictRun = (o: Partial<VerdictOptions>) =>
  run((out, err) => runVerdict({ state: dir, from: "y/a", to: "x/a", network: "nets/blue", port: "80", output: "human", ...o }, out, err));

describe("nadguard verdict", () => {
  it("exits 0 and names the deciding rule when allowed", async () => {
    const r = await verdictRun({});
    expect(r.code).toBe(0);
    expect(r.out).toContain("ALLOWED  y/a -> x/a on nets/blue port 80/TCP");
    expect(r.out).toContain("ingress x/a net1: isolated by x/from-y; allowed by x/from-y ingress[0] from[0]");
    expect(r.out).toContain("egress  y/a net1: not isolated: allowed");
  });

  it("exits 3 when denied, and prints JSON for machines", async () => {
    const r = await verdictRun({ port: "81/tcp", output: "json" });
    expect(r.code).toBe(3);
    const json = JSON.parse(r.out) as { allowed: boolean; families: { ingress: { isolatedBy: string[]; allowedBy: unknown[] } }[] };
    expect(json.allowed).toBe(false);
    expect(json.families[0]!.ingress).toMatchObject({ isolatedBy: ["x/from-y"], allowedBy: [] });
  });

  it("resolves a bare network name in the source's namespace and UDP ports", async () => {
    expect((await verdictRun({ port: "53/UDP" })).code).toBe(0);
    expect((await verdictRun({ network: "blue" })).code).toBe(2);
  });

  it("exits 2 on bad input, naming it", async () => {
    const r = await verdictRun({ from: "y/nope" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("pod y/nope is not in the state");
    await expect(verdictRun({ port: "80/icmp" })).rejects.toThrow(/--port 80\/icmp/);
  });
});

describe("nadguard render", () => {
  it("prints the nft script for the pod's netns, with a summary and the warnings", async () => {
    const r = await run((out, err) => runRender({ state: dir, pod: "x/c" }, out, err));
    expect(r.code).toBe(0);
    expect(r.out).toContain("# net1 (nets/blue): ingress isolated by x/bad, x/from-y; egress not isolated");
    expect(r.out).toContain('add element inet nadguard ingress_v4_hosts { "net1" . 198.18.0.13 . udp . 53, "net1" . 198.18.0.14 . udp . 53, "net1" . 198.18.0.15 . udp . 53 }');
    expect(r.err).toContain("named port nope/TCP is not defined by pod x/c");
  });

  it("refuses an unknown pod", async () => {
    await expect(run((out, err) => runRender({ state: dir, pod: "x/zz" }, out, err))).rejects.toThrow(/pod x\/zz is not in the state directory/);
  });
});
