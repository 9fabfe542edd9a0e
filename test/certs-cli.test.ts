// `nadguard certs --patch-webhooks` as a process, the way the install steps pipe it into kubectl:
// the manifest it reads stays byte for byte as it was, standard output carries only the patched
// configurations (YAML `kubectl apply -f -` reads), `-` reads them from standard input, `--out PATH`
// writes them to a file instead, and bad input exits 2 having written nothing.
import { copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseSecret } from "../certs/secret.js";
import { NADGUARD_BIN, type RunResult, run } from "./e2e/sys.js";
import { openApiProblems } from "./manifests/openapi.js";

const WEBHOOKS = join(import.meta.dirname, "..", "manifests", "webhook-configurations", "webhook-configurations.yaml");
const WEBHOOK_NAMES = ["pods.mutate.nadguard.io", "pods.validate.nadguard.io", "network-attachment-definitions.validate.nadguard.io", "multi-networkpolicies.validate.nadguard.io"];

type Obj = Record<string, any>;
/** Paths as the command prints them: relative to the working directory (the test's, which the child inherits). */
const shown = (path: string): string => relative(process.cwd(), path);
const objects = (text: string): Obj[] => parseAllDocuments(text).map((doc) => doc.toJS() as Obj).filter((o) => o !== null);
const caBundles = (text: string): string[] => objects(text).flatMap((o) => (o.webhooks as Obj[]).map((w) => w.clientConfig.caBundle));

describe("nadguard certs --patch-webhooks (a process)", { timeout: 60_000 }, () => {
  let dir: string;
  let input: string;
  let secret: string;
  const certs = (args: readonly string[], stdin?: string): Promise<RunResult> =>
    run(process.execPath, [NADGUARD_BIN, "certs", "--secret", secret, ...args], { ...(stdin !== undefined && { input: stdin }), timeoutMs: 60_000 });
  const caBundle = async (): Promise<string> => Buffer.from(parseSecret(await readFile(secret, "utf8"), secret).caBundle).toString("base64");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nadguard-certs-cli-"));
    input = join(dir, "webhook-configurations.yaml");
    secret = join(dir, "webhook-tls.yaml");
    await copyFile(WEBHOOKS, input);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes the patched configurations to stdout, the report to stderr, and leaves the file it read as it was", async () => {
    const before = await readFile(input);
    const mtime = (await stat(input)).mtimeMs;
    const r = await certs(["--patch-webhooks", input]);
    expect(r.code).toBe(0);
    const base64 = await caBundle();
    expect(caBundles(r.stdout)).toEqual([base64, base64, base64, base64]);
    for (const object of objects(r.stdout)) expect(openApiProblems(object)).toEqual([]);
    // The file's text with only the caBundle values set: its comments reach kubectl too.
    expect(r.stdout).toBe(`${before.toString("utf8").replaceAll('caBundle: ""', `caBundle: ${base64}`)}`);
    expect(r.stderr).toMatch(/^issued a new CA and serving certificate: no certificate yet\n/);
    expect(r.stderr).toContain(`caBundle set in the webhooks of ${shown(input)} (${WEBHOOK_NAMES.join(", ")})\n`);
    expect(r.stderr).toContain(`caBundle (base64): ${base64}\n`);
    expect(await readFile(input)).toEqual(before);
    expect((await stat(input)).mtimeMs).toBe(mtime);
  });

  it("reads the configurations from stdin with `-`, several inputs as one YAML stream", async () => {
    const text = await readFile(input, "utf8");
    const r = await certs(["--patch-webhooks", "-", "--patch-webhooks", input], text);
    expect(r.code).toBe(0);
    const base64 = await caBundle();
    expect(caBundles(r.stdout)).toEqual(Array.from({ length: 8 }, () => base64));
    expect(objects(r.stdout).map((o) => o.kind)).toEqual(["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]);
    expect(r.stderr).toContain(`caBundle set in the webhooks of stdin (${WEBHOOK_NAMES.join(", ")})\n`);
  });

  it("--out PATH writes the file (only when it changes), and stdout gets the report", async () => {
    const out = join(dir, "patched.yaml");
    const first = await certs(["--patch-webhooks", input, "--out", out]);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: "" });
    expect(first.stdout).toContain(`wrote the webhook configurations with this caBundle to ${shown(out)}\n`);
    expect(caBundles(await readFile(out, "utf8"))).toEqual(Array.from({ length: 4 }, () => expect.stringMatching(/^[A-Za-z0-9+/]+=*$/)));
    expect(caBundles(await readFile(out, "utf8"))[0]).toBe(await caBundle());
    expect((await stat(out)).mode & 0o777).toBe(0o644);
    const mtime = (await stat(out)).mtimeMs;
    const again = await certs(["--patch-webhooks", input, "--out", out]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`caBundle already current in ${shown(out)}\n`);
    expect((await stat(out)).mtimeMs).toBe(mtime);
    expect(await readFile(input, "utf8")).toBe(await readFile(WEBHOOKS, "utf8"));
  });

  it.each([
    [["--out", "x.yaml"], "--out x.yaml: there is nothing to write without --patch-webhooks FILE"],
    [["--patch-webhooks", "-", "--patch-webhooks", "-"], "--patch-webhooks -: standard input can be read once"],
  ])("usage error %j: exit 2, the reason, nothing written", async (args, message) => {
    const r = await certs(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")[0]).toBe(`nadguard certs: ${message}`);
  });

  it("bad input: a missing file or a manifest without nadguard's webhooks exits 2 naming it, stdout empty, --out not written", async () => {
    const out = join(dir, "never.yaml");
    const missing = await certs(["--patch-webhooks", join(dir, "nope.yaml"), "--out", out]);
    expect({ code: missing.code, stdout: missing.stdout }).toEqual({ code: 2, stdout: "" });
    expect(missing.stderr).toContain(`${join(dir, "nope.yaml")}: cannot read: ENOENT`);
    const other = await certs(["--patch-webhooks", "-", "--out", out], "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n");
    expect({ code: other.code, stdout: other.stdout }).toEqual({ code: 2, stdout: "" });
    expect(other.stderr).toContain("stdin: (top level): no webhook calls service nadguard/nadguard-webhook");
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
  });
});
