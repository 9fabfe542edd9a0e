// Certificate rotation decisions (certs/rotation.ts) and `nadguard certs` (src/cli/certs.ts) on
// files: what is issued, what the caBundle trusts during a rollover, that a second run with
// nothing due changes no byte, and that --patch-webhooks never writes back to the file it reads
// (the command as a process: test/certs-cli.test.ts).
import { X509Certificate } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { InputError } from "../../src/api/errors.js";
import { parseArgs } from "node:util";
import { CERTS_OPTIONS, certsOptionsFromValues, runCerts, type CertsCommandOptions } from "../../src/cli/certs.js";
import { UsageError } from "../../src/cli/io.js";
import { formatDuration, parseDuration } from "../../certs/duration.js";
import { generateCa, generateServingCertificate } from "../../certs/generate.js";
import { type CertificateSet, type RotationPolicy, rotate, splitPemBundle } from "../../certs/rotation.js";
import { parseSecret, readCertDir } from "../../certs/secret.js";
import { openApiProblems } from "../manifests/openapi.js";

const DAY = 86_400_000;
/** Paths as the command prints them: relative to the working directory. */
const shown = (path: string): string => relative(process.cwd(), path) || path;
const policy: RotationPolicy = { service: "nadguard-webhook", namespace: "nadguard", validityMs: 30 * DAY, caValidityMs: 30 * DAY, renewBeforeMs: 7 * DAY };
const later = (days: number): Date => new Date(Date.now() + days * DAY);
const x509 = (pem: string): X509Certificate => new X509Certificate(pem);
const trusts = (bundle: string, cert: string): boolean => splitPemBundle(bundle).some((ca) => x509(cert).verify(x509(ca).publicKey) && x509(cert).checkIssued(x509(ca)));

/** A set as an earlier run would have left it, with a 1-day serving certificate. */
function shortLived(): CertificateSet {
  const ca = generateCa({ commonName: "old-ca", validityDays: 1 });
  const serving = generateServingCertificate(ca, { dnsNames: ["nadguard-webhook.nadguard.svc", "nadguard-webhook.nadguard.svc.cluster.local"], ipAddresses: [], validityDays: 1 });
  return { caBundle: ca.cert, cert: serving.cert, key: serving.key };
}

describe("durations", () => {
  it.each([
    ["30d", 30 * DAY],
    ["720h", 30 * DAY],
    ["1d12h", 1.5 * DAY],
    ["90m", 90 * 60_000],
    ["3600s", 3_600_000],
    ["1.5h", 5_400_000],
  ])("reads %s", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "30", "0d", "-1d", "1w", "d", "1d 2h", "1h30"])("refuses %j", (text) => expect(parseDuration(text)).toBeUndefined());

  it("prints days first", () => expect(formatDuration(30 * DAY + 3_600_000)).toBe("30d1h"));
});

describe("rotate", () => {
  it("issues a CA and an RSA 2048 serving certificate for <svc>.<ns>.svc and .svc.cluster.local", () => {
    const { set, action, reason } = rotate(undefined, policy);
    expect([action, reason]).toEqual(["issued", "no certificate yet"]);
    const cert = x509(set.cert);
    expect(cert.subjectAltName).toBe("DNS:nadguard-webhook.nadguard.svc, DNS:nadguard-webhook.nadguard.svc.cluster.local");
    expect(cert.publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048 });
    expect(splitPemBundle(set.caBundle)).toHaveLength(1);
    expect(trusts(set.caBundle, set.cert)).toBe(true);
    expect(x509(set.caBundle).ca).toBe(true);
    const lifetime = new Date(cert.validTo).getTime() - Date.now();
    expect(Math.abs(lifetime - 30 * DAY)).toBeLessThan(60_000);
    expect(set.cert).not.toContain("\r");
  });

  it("changes nothing when nothing is due, returning the very same strings", () => {
    const first = rotate(undefined, policy).set;
    const again = rotate(first, policy, later(20));
    expect(again.action).toBe("unchanged");
    expect(again.set).toEqual(first);
    expect(again.renewAt.getTime()).toBeCloseTo(new Date(x509(first.caBundle).validTo).getTime() - 7 * DAY, -4);
  });

  it("renews inside the margin and keeps trusting the old CA while the old certificate can still be served", () => {
    const old = shortLived();
    const renewed = rotate(old, policy);
    expect(renewed.action).toBe("issued");
    expect(renewed.reason).toMatch(/^tls\.crt expires at .*, within --renew-before 7d$/);
    const bundle = splitPemBundle(renewed.set.caBundle);
    expect(bundle).toHaveLength(2);
    expect(bundle[1]).toBe(splitPemBundle(old.caBundle)[0]); // newest first, the old CA unchanged
    expect(trusts(renewed.set.caBundle, renewed.set.cert)).toBe(true);
    expect(trusts(renewed.set.caBundle, old.cert)).toBe(true); // replicas not yet updated still verify
    expect(renewed.bundle.map((entry) => entry.issuesServing)).toEqual([true, false]);

    // The old CA leaves the bundle once it (and the old certificate with it) has expired.
    const pruned = rotate(renewed.set, policy, later(2));
    expect(pruned.action).toBe("pruned");
    expect(splitPemBundle(pruned.set.caBundle)).toEqual([bundle[0]]);
    expect(pruned.set.cert).toBe(renewed.set.cert);
    expect(rotate(pruned.set, policy, later(2)).action).toBe("unchanged");
  });

  it("renews when the service's names change, and when forced", () => {
    const first = rotate(undefined, policy).set;
    const moved = rotate(first, { ...policy, namespace: "nadguard-system" });
    expect(moved.reason).toBe(
      "tls.crt names nadguard-webhook.nadguard.svc, nadguard-webhook.nadguard.svc.cluster.local, the service needs nadguard-webhook.nadguard-system.svc, nadguard-webhook.nadguard-system.svc.cluster.local",
    );
    expect(x509(moved.set.cert).subjectAltName).toContain("nadguard-webhook.nadguard-system.svc");
    const forced = rotate(first, { ...policy, force: true });
    expect([forced.action, forced.reason]).toEqual(["issued", "renewal forced (--force)"]);
    expect(splitPemBundle(forced.set.caBundle)).toHaveLength(2);
  });

  it("refuses unusable existing files rather than silently dropping the CA in use, unless forced", () => {
    const first = rotate(undefined, policy).set;
    const mismatched = { ...first, key: rotate(undefined, policy).set.key };
    expect(() => rotate(mismatched, policy)).toThrow(InputError);
    expect(() => rotate(mismatched, policy)).toThrow(/tls\.key: is not the key of tls\.crt/);
    expect(() => rotate({ ...first, caBundle: "junk" }, policy)).toThrow(/ca\.crt: holds no PEM certificate/);
    const forced = rotate(mismatched, { ...policy, force: true });
    expect(forced.reason).toBe("renewal forced (--force) over unusable files");
    expect(splitPemBundle(forced.set.caBundle)).toHaveLength(1);
  });
});

describe("nadguard certs", () => {
  const ROOT = fileURLToPath(new URL("../../", import.meta.url));
  let dir: string;
  let webhooksFile: string;
  /** Where --out writes the patched configurations. */
  let patchedFile: string;
  const ORIGINAL = join(ROOT, "manifests", "webhook-configurations", "webhook-configurations.yaml");
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nadguard-certs-"));
    webhooksFile = join(dir, "webhook-configurations.yaml");
    patchedFile = join(dir, "patched.yaml");
    await copyFile(ORIGINAL, webhooksFile);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const options = (overrides: Partial<CertsCommandOptions>): CertsCommandOptions => ({
    service: "nadguard-webhook",
    namespace: "nadguard",
    secretName: "nadguard-webhook-tls",
    clusterDomain: "cluster.local",
    validity: "365d",
    renewBefore: "30d",
    patchWebhooks: [],
    force: false,
    ...overrides,
  });
  async function run(overrides: Partial<CertsCommandOptions>): Promise<{ code: number; lines: string[]; errors: string[] }> {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await runCerts(options(overrides), (line) => lines.push(line), (line) => errors.push(line));
    return { code, lines, errors };
  }
  const caBundles = (text: string): string[] =>
    parseAllDocuments(text).flatMap((doc) => ((doc.toJS() as { webhooks: Array<{ clientConfig: { caBundle: string } }> }).webhooks ?? []).map((w) => w.clientConfig.caBundle));

  it("writes a kubernetes.io/tls Secret with ca.crt, every caBundle to --out (the input untouched), and prints the kubectl patch commands", async () => {
    const secretFile = join(dir, "secret.yaml");
    const { code, lines } = await run({ secret: secretFile, patchWebhooks: [webhooksFile], out: patchedFile });
    expect(code).toBe(0);
    expect(lines[0]).toBe("issued a new CA and serving certificate: no certificate yet");

    const secretText = await readFile(secretFile, "utf8");
    const secret = parseYaml(secretText);
    expect(openApiProblems(secret)).toEqual([]);
    expect(secret).toMatchObject({ kind: "Secret", type: "kubernetes.io/tls", metadata: { name: "nadguard-webhook-tls", namespace: "nadguard" } });
    expect(Object.keys(secret.data).sort()).toEqual(["ca.crt", "tls.crt", "tls.key"]);
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    const set = parseSecret(secretText, secretFile);

    const patched = await readFile(patchedFile, "utf8");
    const base64 = Buffer.from(set.caBundle).toString("base64");
    expect(caBundles(patched)).toEqual([base64, base64, base64, base64]);
    for (const doc of parseAllDocuments(patched)) expect(openApiProblems(doc.toJS())).toEqual([]);
    // Only the caBundle values changed: comments and layout are the repository's.
    const original = await readFile(ORIGINAL, "utf8");
    expect(patched.replace(/caBundle: \S+/g, "caBundle: X")).toBe(original.replace(/caBundle: \S+/g, "caBundle: X"));
    expect(await readFile(webhooksFile, "utf8")).toBe(original);
    expect(lines).toContain(`wrote the webhook configurations with this caBundle to ${shown(patchedFile)}`);

    expect(lines).toContain(`caBundle (base64): ${base64}`);
    const commands = lines.filter((line) => line.trim().startsWith("kubectl patch"));
    expect(commands).toHaveLength(2);
    expect(commands[0]!.trim()).toBe(
      `kubectl patch mutatingwebhookconfiguration nadguard --type=strategic -p '{"webhooks":[{"name":"pods.mutate.nadguard.io","clientConfig":{"caBundle":"${base64}"}}]}'`,
    );
  });

  it("changes no byte and touches no file when run again with nothing due", async () => {
    const secretFile = join(dir, "secret.yaml");
    const before = await Promise.all([secretFile, webhooksFile, patchedFile].map(async (file) => [await readFile(file, "utf8"), (await stat(file)).mtimeMs]));
    const { lines } = await run({ secret: secretFile, patchWebhooks: [webhooksFile], out: patchedFile });
    expect(lines[0]).toMatch(/^serving certificate up to date \(renewal due .*, --renew-before 30d\)$/);
    expect(lines).toContain(`caBundle set in the webhooks of ${shown(webhooksFile)} (pods.mutate.nadguard.io, pods.validate.nadguard.io, network-attachment-definitions.validate.nadguard.io, multi-networkpolicies.validate.nadguard.io)`);
    expect(lines).toContain(`caBundle already current in ${shown(patchedFile)}`);
    const after = await Promise.all([secretFile, webhooksFile, patchedFile].map(async (file) => [await readFile(file, "utf8"), (await stat(file)).mtimeMs]));
    expect(after).toEqual(before);
  });

  it("rolls over when due: new CA + old CA in the Secret's ca.crt and in every caBundle", async () => {
    const secretFile = join(dir, "rollover.yaml");
    await run({ secret: secretFile, validity: "2d", renewBefore: "1d" });
    const old = parseSecret(await readFile(secretFile, "utf8"), secretFile);
    const { lines, errors } = await run({ secret: secretFile, validity: "30d", renewBefore: "3d", patchWebhooks: [webhooksFile] });
    // The configurations on stdout, alone; the report on stderr.
    expect(lines).toHaveLength(1);
    expect(caBundles(lines[0]!)[0]).toBe(Buffer.from(parseSecret(await readFile(secretFile, "utf8"), secretFile).caBundle).toString("base64"));
    expect(errors[0]).toMatch(/^issued a new CA and serving certificate: (tls\.crt|its CA) expires at .*, within --renew-before 3d$/);
    expect(errors.some((line) => line.endsWith("(previous CA, kept for the rollover)"))).toBe(true);
    const next = parseSecret(await readFile(secretFile, "utf8"), secretFile);
    expect(splitPemBundle(next.caBundle)).toEqual([splitPemBundle(next.caBundle)[0], ...splitPemBundle(old.caBundle)]);
    expect(trusts(next.caBundle, old.cert) && trusts(next.caBundle, next.cert)).toBe(true);
    expect(await readFile(webhooksFile, "utf8")).toBe(await readFile(ORIGINAL, "utf8"));

    // Three days on, the old CA has expired: it leaves ca.crt, the serving certificate stays.
    const { lines: pruned } = await run({ secret: secretFile, validity: "30d", renewBefore: "3d", now: later(3) });
    expect(pruned[0]).toBe("serving certificate kept; 1 expired or duplicate CA certificate(s) left ca.crt");
    const last = parseSecret(await readFile(secretFile, "utf8"), secretFile);
    expect([last.cert, splitPemBundle(last.caBundle)]).toEqual([next.cert, [splitPemBundle(next.caBundle)[0]]]);
  });

  it("writes ca.crt, tls.crt and tls.key with --out-dir, the key private", async () => {
    const out = join(dir, "files");
    const { lines } = await run({ outDir: out });
    expect(lines).toContain(`wrote ${["ca.crt", "tls.key", "tls.crt"].map((name) => shown(join(out, name))).join(", ")}`);
    const set = await readCertDir(out);
    expect(set && trusts(set.caBundle, set.cert)).toBe(true);
    expect((await stat(join(out, "tls.key"))).mode & 0o777).toBe(0o600);
    expect((await run({ outDir: out })).lines).toContain(`${shown(out)} unchanged`);
  });

  it.each([
    [{}, /give exactly one of --secret FILE and --out-dir DIR/],
    [{ secret: "a", outDir: "b" }, /give exactly one of --secret FILE and --out-dir DIR/],
    [{ secret: "a", validity: "90" }, /--validity 90: expected a duration such as 365d, 720h or 1d12h/],
    [{ secret: "a", renewBefore: "400d" }, /--renew-before 400d is not shorter than --validity 365d: every run would renew/],
    [{ secret: "a", caValidity: "30d" }, /--ca-validity 30d is shorter than --validity 365d/],
    [{ secret: "a", namespace: "Bad_NS" }, /--namespace Bad_NS: not a DNS-1123 label/],
    [{ secret: "a", out: "x.yaml" }, /--out x\.yaml: there is nothing to write without --patch-webhooks FILE/],
    [{ secret: "a", patchWebhooks: ["-", "-"] }, /--patch-webhooks -: standard input can be read once/],
  ] as Array<[Partial<CertsCommandOptions>, RegExp]>)("refuses %j", async (overrides, message) => {
    const attempt = run(overrides);
    await expect(attempt).rejects.toThrow(UsageError);
    await expect(attempt).rejects.toThrow(message);
  });

  it("reads its flags with their defaults", () => {
    const { values } = parseArgs({ args: ["--secret", "s.yaml", "--patch-webhooks", "a.yaml", "--patch-webhooks", "b.yaml"], options: CERTS_OPTIONS, strict: true });
    expect(certsOptionsFromValues(values as Record<string, string | boolean | string[] | undefined>)).toEqual({
      secret: "s.yaml",
      outDir: undefined,
      service: "nadguard-webhook",
      namespace: "nadguard",
      secretName: "nadguard-webhook-tls",
      clusterDomain: "cluster.local",
      validity: "365d",
      caValidity: undefined,
      renewBefore: "30d",
      patchWebhooks: ["a.yaml", "b.yaml"],
      out: "-",
      force: false,
    });
  });

  it("reports a webhook manifest that does not call the service", async () => {
    await expect(run({ outDir: join(dir, "files"), service: "elsewhere", patchWebhooks: [webhooksFile] })).rejects.toThrow(/no webhook calls service nadguard\/elsewhere/);
  });
});
