// `nadguard matrix` and the what-if flags of `matrix` and `verdict`, as a person or a CI job runs
// them: a process per command on a state directory holding the conformance grid (x/y/z × a/b/c on
// nets/blue) with an ingress-deny policy in x and an egress-deny policy for y/a. Checks the exact
// grid lines, the JSON cells (schema, and `verdict` agreeing on a pair), the markdown table, the
// marks for disagreeing families and sides, and the exit codes of `--diff` (0, 4, 2).
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { z } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gridYaml, policy } from "./policy-conformance/grid.js";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "bin", "nadguard.js");

let dir: string;
let state: string;

const denyIn = policy("x", "deny-in", { podSelector: {}, policyTypes: ["Ingress"] });
const aNoEgress = policy("y", "a-no-egress", { podSelector: { matchLabels: { pod: "a" } }, policyTypes: ["Egress"] });
const fromYb = policy("x", "from-yb", { podSelector: { matchLabels: { pod: "b" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "b" } } }], ports: [{ port: 80 }] }] });
const v4Only = policy("x", "v4-only", { podSelector: { matchLabels: { pod: "b" } }, ingress: [{ from: [{ ipBlock: { cidr: "198.18.0.0/24" } }] }] });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-matrix-cli-"));
  state = join(dir, "state");
  await run("mkdir", ["-p", state]);
  await writeFile(join(state, "grid.yaml"), gridYaml());
  await writeFile(join(state, "policies.yaml"), [denyIn, aNoEgress].map((p) => stringify(p)).join("---\n"));
  await writeFile(join(dir, "from-yb.yaml"), stringify(fromYb));
  await writeFile(join(dir, "v4-only.yaml"), stringify(v4Only));
  await writeFile(join(dir, "same.yaml"), stringify(denyIn));
  await writeFile(join(dir, "bad.yaml"), "kind: MultiNetworkPolicy\nmetadata: { name: x }\nspec: 3\n");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function nadguard(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout, err: failed.stderr };
  }
}

const matrix = (...args: string[]) => nadguard("matrix", "--state", state, "--network", "nets/blue", ...args);

describe("nadguard matrix (table)", () => {
  it("prints the grid: exactly the cells into x denied by x's ingress, y/a's row denied by its egress", async () => {
    const r = await matrix("--port", "80");
    expect(r.code).toBe(0);
    expect(r.out.split("\n").slice(0, 14)).toEqual([
      "nadguard matrix nets/blue: 9 pods (rows: from, columns: to, numbered as the rows; columns by namespace: 1-3 x, 4-6 y, 7-9 z)",
      "",
      "nets/blue port 80/TCP: 43 allowed, 29 denied of 72 pairs",
      "       123 456 789",
      "1 x/a  =ii AAA AAA",
      "2 x/b  i=i AAA AAA",
      "3 x/c  ii= AAA AAA",
      "4 y/a  xxx =ee eee",
      "5 y/b  iii A=A AAA",
      "6 y/c  iii AA= AAA",
      "7 z/a  iii AAA =AA",
      "8 z/b  iii AAA A=A",
      "9 z/c  iii AAA AA=",
      "",
    ]);
    expect(r.out).toContain("legend: A allowed · x denied by both sides · e denied by the source's egress only · i denied by the destination's ingress only");
  });

  it("marks the cells where the families disagree (an IPv4-only ipBlock), as the cluster would be --with the policy", async () => {
    const r = await matrix("--port", "80", "--with", join(dir, "v4-only.yaml"), "--namespace", "x", "--namespace", "z");
    expect(r.code).toBe(0);
    expect(r.out.split("\n").slice(2, 10)).toEqual([
      "nets/blue port 80/TCP: 15 allowed, 15 denied of 30 pairs",
      "       123 456",
      "1 x/a  =4i AAA",
      "2 x/b  i=i AAA",
      "3 x/c  i4= AAA",
      "4 z/a  i4i =AA",
      "5 z/b  i4i A=A",
      "6 z/c  i4i AA=",
    ]);
  });

  it("keeps only the pods a --selector matches, and by default shows the ports the policies name plus one they do not", async () => {
    const r = await matrix("--selector", "pod in (a,b),pod!=a", "--with", join(dir, "from-yb.yaml"));
    expect(r.code).toBe(0);
    expect(r.out).toContain("nadguard matrix nets/blue: 3 pods (rows: from, columns: to, numbered as the rows; columns by namespace: 1 x, 2 y, 3 z)");
    expect(r.out).toContain("nets/blue port 1/TCP: 4 allowed, 2 denied of 6 pairs\n       1 2 3\n1 x/b  = A A\n2 y/b  i = A\n3 z/b  i A =\n");
    expect(r.out).toContain("nets/blue port 80/TCP: 5 allowed, 1 denied of 6 pairs\n       1 2 3\n1 x/b  = A A\n2 y/b  A = A\n3 z/b  i A =\n");
  });

  it("says so when no pod takes part, exit 0", async () => {
    const r = await matrix("--namespace", "w");
    expect(r.code).toBe(0);
    expect(r.out).toBe("nadguard matrix nets/blue: no pod with an address on it takes part (attached pods are chosen by --namespace and --selector)\n");
  });

  it("exits 2 on bad input, naming it", async () => {
    for (const [args, message] of [
      [["--network", "nets/green"], "NetworkAttachmentDefinition nets/green is not in the state (NADs: nets/blue, nets/red)"],
      [["--output", "yaml"], "--output yaml: expected table, json or markdown"],
      [["--port", "http"], "--port http: expected PORT or PORT/PROTO"],
      [["--selector", "a=(b"], '--selector a=(b: cannot read "a=(b"'],
      [["--without", "Pod/x"], "--without Pod/x: expected Pod/NAMESPACE/NAME"],
      [["--without", "Pod/x/zz"], "--without Pod/x/zz: there is no Pod x/zz in the state"],
      [["--with", join(dir, "bad.yaml")], "spec: "],
      [["--with", join(dir, "missing.yaml")], "cannot read"],
    ] as const) {
      const r = await nadguard("matrix", "--state", state, "--network", "nets/blue", ...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.err).toContain(message);
    }
  });
});

const Side = z.strictObject({
  direction: z.enum(["egress", "ingress"]),
  pod: z.string(),
  interface: z.string().optional(),
  managed: z.boolean(),
  unmanagedReason: z.string().optional(),
  isolated: z.boolean(),
  isolatedBy: z.array(z.string()),
  allowed: z.boolean(),
  allowedBy: z.array(z.strictObject({ policy: z.string(), rule: z.number(), peer: z.number().optional() })),
});
const Cell = z.strictObject({
  from: z.string().regex(/^[^/]+\/[^/]+$/),
  to: z.string().regex(/^[^/]+\/[^/]+$/),
  port: z.number().int(),
  protocol: z.enum(["TCP", "UDP", "SCTP"]),
  family: z.enum(["IPv4", "IPv6"]),
  source: z.string(),
  destination: z.string(),
  allowed: z.boolean(),
  samePod: z.boolean(),
  egress: Side,
  ingress: Side,
});
const MatrixJson = z.looseObject({ network: z.string(), cells: z.array(Cell) });

describe("nadguard matrix --output json", () => {
  it("gives one cell per pair, port and family, each side as verdict gives it, and verdict agrees on the pair", async () => {
    const r = await matrix("--port", "80", "--port", "53/udp", "--output", "json");
    expect(r.code).toBe(0);
    const json = MatrixJson.parse(JSON.parse(r.out));
    expect(json.network).toBe("nets/blue");
    expect(json.cells).toHaveLength(9 * 9 * 2 * 2);
    const cell = json.cells.find((c) => c.from === "z/b" && c.to === "x/c" && c.port === 80 && c.family === "IPv6")!;
    expect(cell).toMatchObject({ protocol: "TCP", source: "fd00:b::11", destination: "fd00:b::c", allowed: false, samePod: false });
    expect(cell.ingress).toEqual({ direction: "ingress", pod: "x/c", interface: "net1", managed: true, isolated: true, isolatedBy: ["x/deny-in"], allowed: false, allowedBy: [] });
    expect(cell.egress).toMatchObject({ pod: "z/b", isolated: false, allowed: true });
    expect(json.cells.filter((c) => !c.allowed).length).toBe(29 * 2 * 2);

    const v = await nadguard("verdict", "--state", state, "--from", "z/b", "--to", "x/c", "--network", "nets/blue", "--port", "80", "--output", "json");
    expect(v.code).toBe(3);
    const verdict = JSON.parse(v.out) as { families: { family: number; allowed: boolean; egress: unknown; ingress: unknown }[] };
    const six = verdict.families.find((f) => f.family === 6)!;
    expect({ allowed: six.allowed, egress: six.egress, ingress: six.ingress }).toEqual({ allowed: cell.allowed, egress: cell.egress, ingress: cell.ingress });
  });
});

describe("a reader that stops early", () => {
  it("ends the command quietly with exit 0 (as `| head` does), without a stack trace", async () => {
    const child = spawn(process.execPath, [BIN, "matrix", "--state", state, "--network", "nets/blue", "--port", "80", "--port", "81", "--output", "json"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.once("data", () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  });
});

describe("nadguard matrix --output markdown", () => {
  it("renders as a GitHub table: a header row, a delimiter row, rows of the same width", async () => {
    const r = await matrix("--port", "80", "--output", "markdown");
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    const start = lines.indexOf("| from \\ to | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 |");
    expect(start).toBeGreaterThan(0);
    expect(lines[start - 2]).toBe("**port 80/TCP: 43 allowed, 29 denied of 72 pairs**");
    expect(lines[start - 1]).toBe("");
    const table = lines.slice(start, start + 11);
    expect(table[1]).toMatch(/^\| --- (\| :-: ){9}\|$/);
    for (const row of table) expect(row.split(/(?<!\\)\|/).length).toBe(12);
    expect(table[5]).toBe("| 4 `y/a` | x | x | x | = | e | e | e | e | e |");
    expect(lines[start + 11]).toBe("");
  });
});

describe("what-if --diff", () => {
  it("matrix: prints what a new policy opens, with the rule responsible, and exits 4", async () => {
    const r = await matrix("--port", "80", "--with", join(dir, "from-yb.yaml"), "--diff");
    expect(r.code).toBe(4);
    expect(r.out.split("\n")).toEqual([
      "nadguard matrix --diff nets/blue, ports 80/TCP",
      "opened (1):",
      "  y/b -> x/b  80/TCP  IPv4, IPv6",
      "    ingress x/b net1: allowed by x/from-yb ingress[0] from[0]",
      "opens 1 flow, closes 0",
      "",
    ]);
  });

  it("matrix: deleting the ingress-deny policy opens the 24 flows into x, grouped, with a one-line summary", async () => {
    const r = await matrix("--port", "80", "--without", "multi-policy/x/deny-in", "--diff", "--output", "json");
    expect(r.code).toBe(4);
    const json = JSON.parse(r.out) as { summary: string; opened: { because: string[] }[]; closed: unknown[]; cells: unknown[] };
    expect(json.summary).toBe("opens 21 flows, closes 0");
    expect(json.opened[0]!.because).toEqual(["ingress x/b net1: no longer isolated (was isolated by x/deny-in)"]);
    expect(json.cells).toHaveLength(42);
  });

  it("exits 0 when nothing changes (a file that replaces a policy by itself)", async () => {
    const r = await matrix("--port", "80", "--with", join(dir, "same.yaml"), "--diff");
    expect(r.code).toBe(0);
    expect(r.out).toBe("nadguard matrix --diff nets/blue, ports 80/TCP\nopens 0 flows, closes 0\n");
  });

  it("verdict: exits 4 with the change of the pair, 0 without one, 2 on bad input", async () => {
    const args = ["verdict", "--state", state, "--from", "y/b", "--to", "x/b", "--network", "nets/blue", "--port", "80"];
    const opened = await nadguard(...args, "--with", join(dir, "from-yb.yaml"), "--diff");
    expect(opened.code).toBe(4);
    expect(opened.out).toBe(
      "nadguard verdict --diff y/b -> x/b on nets/blue port 80/TCP\nopened (1):\n  y/b -> x/b  80/TCP  IPv4, IPv6\n    ingress x/b net1: allowed by x/from-yb ingress[0] from[0]\nopens 1 flow, closes 0\n",
    );
    const after = await nadguard(...args, "--with", join(dir, "from-yb.yaml"));
    expect(after.code).toBe(0);
    expect(after.out).toContain("ALLOWED  y/b -> x/b on nets/blue port 80/TCP");
    const none = await nadguard(...args, "--port", "81", "--with", join(dir, "from-yb.yaml"), "--diff");
    expect(none.code).toBe(0);
    expect(none.out).toContain("opens 0 flows, closes 0");
    const bad = await nadguard(...args, "--without", "Secret/x/y", "--diff");
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--without Secret/x/y: unknown kind "Secret"');
  });
});
