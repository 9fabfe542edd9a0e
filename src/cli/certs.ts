// `nadguard certs`: the webhook's CA and serving certificate for a cluster, kept in a Secret
// manifest (`--secret FILE`) or a directory (`--out-dir DIR`) that is both output and state: a
// run renews what is due (certs/rotation.ts), keeps the previous CA in the caBundle for the
// rollover, patches the caBundle into the webhook configuration manifests, and prints it with the
// `kubectl patch` commands for a cluster. A run with nothing due changes no file.
import { existsSync } from "node:fs";
import type { ParseArgsConfig } from "node:util";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { formatDuration, parseDuration } from "../../certs/duration.js";
import { type CertificateSet, type RotationPolicy, policyProblems, rotate } from "../../certs/rotation.js";
import { readCertDir, readSecretFile, writeCertDir, writeSecretFile } from "../../certs/secret.js";
import { type WebhookRef, kubectlPatchCommands, patchWebhookFile, webhooksInFile } from "../../certs/webhook-patch.js";
import { EXIT, UsageError } from "./io.js";

export interface CertsCommandOptions {
  /** The Secret manifest to read and (re)write; exactly one of secret and outDir. */
  secret?: string | undefined;
  /** The directory of ca.crt, tls.crt, tls.key to read and (re)write. */
  outDir?: string | undefined;
  service: string;
  namespace: string;
  secretName: string;
  clusterDomain: string;
  /** Durations as `365d`, `720h`, `1d12h`. */
  validity: string;
  /** Default: the same as validity. */
  caValidity?: string | undefined;
  renewBefore: string;
  patchWebhooks: readonly string[];
  force: boolean;
  /** The clock that decides what is due; tests only. */
  now?: Date;
}

export const CERTS_SUMMARY = "create or renew the webhook's CA and serving certificate (Secret manifest or files) and its caBundle";
export const CERTS_USAGE =
  "nadguard certs (--secret FILE | --out-dir DIR) [--service NAME] [--namespace NS] [--secret-name NAME] [--cluster-domain DOMAIN] " +
  "[--validity DURATION] [--ca-validity DURATION] [--renew-before DURATION] [--patch-webhooks FILE]... [--force]";

/** For parseArgs, as commands.ts declares the other commands' options. */
export const CERTS_OPTIONS: NonNullable<ParseArgsConfig["options"]> = {
  secret: { type: "string" },
  "out-dir": { type: "string" },
  service: { type: "string", default: "nadguard-webhook" },
  namespace: { type: "string", default: "nadguard" },
  "secret-name": { type: "string", default: "nadguard-webhook-tls" },
  "cluster-domain": { type: "string", default: "cluster.local" },
  validity: { type: "string", default: "365d" },
  "ca-validity": { type: "string" },
  "renew-before": { type: "string", default: "30d" },
  "patch-webhooks": { type: "string", multiple: true, default: [] },
  force: { type: "boolean", default: false },
};

/** The options from parseArgs values (keys of CERTS_OPTIONS). */
export function certsOptionsFromValues(values: Record<string, string | boolean | string[] | undefined>): CertsCommandOptions {
  const text = (key: string): string | undefined => values[key] as string | undefined;
  return {
    secret: text("secret"),
    outDir: text("out-dir"),
    service: text("service") ?? "nadguard-webhook",
    namespace: text("namespace") ?? "nadguard",
    secretName: text("secret-name") ?? "nadguard-webhook-tls",
    clusterDomain: text("cluster-domain") ?? "cluster.local",
    validity: text("validity") ?? "365d",
    caValidity: text("ca-validity"),
    renewBefore: text("renew-before") ?? "30d",
    patchWebhooks: (values["patch-webhooks"] as string[] | undefined) ?? [],
    force: values.force === true,
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function duration(flag: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new UsageError(`--${flag} ${value}: expected a duration such as 365d, 720h or 1d12h`);
  return ms;
}

function policyFrom(options: CertsCommandOptions): RotationPolicy {
  if (Boolean(options.secret) === Boolean(options.outDir)) throw new UsageError("give exactly one of --secret FILE and --out-dir DIR");
  for (const [flag, value] of [["service", options.service], ["namespace", options.namespace]] as const) {
    if (!DNS_LABEL.test(value)) throw new UsageError(`--${flag} ${value}: not a DNS-1123 label`);
  }
  if (!DNS_NAME.test(options.clusterDomain)) throw new UsageError(`--cluster-domain ${options.clusterDomain}: not a DNS name`);
  const validityMs = duration("validity", options.validity);
  const policy: RotationPolicy = {
    service: options.service,
    namespace: options.namespace,
    clusterDomain: options.clusterDomain,
    validityMs,
    caValidityMs: options.caValidity === undefined ? validityMs : duration("ca-validity", options.caValidity),
    renewBeforeMs: duration("renew-before", options.renewBefore),
    force: options.force,
  };
  const problems = policyProblems(policy);
  if (problems.length > 0) throw new UsageError(problems.map((p) => `${p.path} ${p.message}`).join("; "));
  return policy;
}

/** The repository's webhook configurations, for the kubectl commands when no --patch-webhooks is given. */
function defaultWebhookManifest(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth++) {
    const candidate = join(dir, "manifests", "webhook", "webhook-configurations.yaml");
    if (existsSync(join(dir, "package.json"))) return existsSync(candidate) ? candidate : undefined;
    dir = dirname(dir);
  }
  return undefined;
}

const shown = (path: string): string => relative(process.cwd(), path) || path;
const day = (date: Date): string => date.toISOString().replace(/\.\d+Z$/, "Z");

/** Exit 0 on success; usage and input problems are thrown (UsageError, InputError) for main() to report. */
export async function runCerts(options: CertsCommandOptions, out: (line: string) => void, _err: (line: string) => void): Promise<number> {
  const policy = policyFrom(options);
  const existing: CertificateSet | undefined = options.secret ? await readSecretFile(options.secret) : await readCertDir(options.outDir!);
  const outcome = rotate(existing, policy, options.now ?? new Date());

  if (outcome.action === "issued") out(`issued a new CA and serving certificate: ${outcome.reason}`);
  else if (outcome.action === "pruned") out(`serving certificate kept; ${outcome.reason}`);
  else out(`serving certificate up to date (renewal due ${day(outcome.renewAt)}, --renew-before ${formatDuration(policy.renewBeforeMs)})`);
  out(`  tls.crt: ${outcome.dnsNames.join(", ")}; expires ${day(outcome.notAfter)}`);
  for (const ca of outcome.bundle) {
    out(`  ca.crt:  ${ca.subject.replace(/^CN=/, "")}; expires ${day(ca.notAfter)}${ca.issuesServing ? " (signs tls.crt)" : " (previous CA, kept for the rollover)"}`);
  }

  if (options.secret) {
    const ref = { name: options.secretName, namespace: options.namespace };
    const written = await writeSecretFile(options.secret, outcome.set, ref);
    out(written ? `wrote Secret ${ref.namespace}/${ref.name} to ${shown(options.secret)}` : `${shown(options.secret)} unchanged`);
  } else {
    const written = await writeCertDir(options.outDir!, outcome.set);
    out(written.length > 0 ? `wrote ${written.map(shown).join(", ")}` : `${shown(options.outDir!)} unchanged`);
  }

  const caBundleBase64 = Buffer.from(outcome.set.caBundle, "utf8").toString("base64");
  const service = { name: options.service, namespace: options.namespace };
  const webhooks: WebhookRef[] = [];
  for (const file of options.patchWebhooks) {
    const patched = await patchWebhookFile(file, caBundleBase64, service);
    webhooks.push(...patched.webhooks);
    out(`${patched.changed ? "patched the caBundle of" : "caBundle already current in"} ${shown(file)} (${patched.webhooks.map((w) => w.webhook).join(", ")})`);
  }
  if (webhooks.length === 0) {
    const manifest = defaultWebhookManifest();
    if (manifest) webhooks.push(...(await webhooksInFile(manifest, service).catch(() => [])));
  }

  out(`caBundle (base64): ${caBundleBase64}`);
  if (webhooks.length > 0) {
    out("to update webhook configurations already in the cluster:");
    for (const command of kubectlPatchCommands(webhooks, caBundleBase64)) out(`  ${command}`);
  }
  if (outcome.action === "issued" && existing) {
    out("rotation: apply the webhook configurations (new caBundle) first, then the Secret; the previous CA stays in the caBundle until it expires or the next renewal");
  }
  return EXIT.ok;
}
