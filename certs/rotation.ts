// Rotation of the webhook's serving certificate, as a decision over the set in use: a serving
// certificate, its key and the CA bundle kube-apiserver trusts (the webhook configurations'
// caBundle, also the Secret's ca.crt).
//
// Each renewal issues a new CA and a new serving certificate, and the CA's private key is thrown
// away: nothing but the serving key needs keeping. The bundle then holds the new CA *and* the CA
// of the certificate being replaced, because replicas keep serving the old certificate until the
// kubelet has updated their Secret volume (up to a minute and more) and the API server may still
// have the old bundle: both pairs verify against both bundles. A retained CA leaves the bundle
// when it expires, or at the next renewal; a CA is issued with the lifetime of its serving
// certificate (by default), so that is when the old serving certificate expires.
//
// Deterministic in what it keeps: a set that needs nothing is returned unchanged (same strings),
// so writing the result again changes no byte.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { InputError, type Problem } from "../src/api/errors.js";
import { formatDuration } from "./duration.js";
import { generateCa, generateServingCertificate } from "./generate.js";

/** What the webhook serves and what its callers trust; PEM throughout. */
export interface CertificateSet {
  /** CA certificates, newest first: the caBundle (`ca.crt`). */
  caBundle: string;
  /** The serving certificate (`tls.crt`). */
  cert: string;
  /** Its private key (`tls.key`). */
  key: string;
}

export interface RotationPolicy {
  /** The webhook's Service and namespace: the SANs are `<service>.<namespace>.svc[.<clusterDomain>]`. */
  service: string;
  namespace: string;
  /** Default `cluster.local`. */
  clusterDomain?: string;
  /** Lifetime of a new serving certificate. */
  validityMs: number;
  /** Lifetime of a new CA; at least validityMs. */
  caValidityMs: number;
  /** Renew when the serving certificate or its CA has less than this left. */
  renewBeforeMs: number;
  /** Renew now, whatever is left. */
  force?: boolean;
}

export interface BundleEntry {
  subject: string;
  serialNumber: string;
  notAfter: Date;
  /** True for the CA that issued the serving certificate. */
  issuesServing: boolean;
}

export interface RotationResult {
  set: CertificateSet;
  /** `issued`: a new CA and serving certificate; `pruned`: expired CAs left the bundle; `unchanged`. */
  action: "issued" | "pruned" | "unchanged";
  /** Why a new certificate was issued, or why the bundle changed. */
  reason?: string;
  dnsNames: string[];
  /** The serving certificate's expiry, and when it becomes due for renewal. */
  notAfter: Date;
  renewAt: Date;
  bundle: BundleEntry[];
}

/** The names kube-apiserver uses for a service webhook, and the same with the cluster domain. */
export function servingDnsNames(service: string, namespace: string, clusterDomain = "cluster.local"): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.${clusterDomain}`];
}

/** Problems of a policy (lifetimes that cannot work together); empty when usable. */
export function policyProblems(policy: RotationPolicy): Problem[] {
  const problems: Problem[] = [];
  const fmt = formatDuration;
  if (policy.caValidityMs < policy.validityMs) {
    problems.push({ code: "certs.ca-validity", path: "--ca-validity", message: `${fmt(policy.caValidityMs)} is shorter than --validity ${fmt(policy.validityMs)}: the CA would expire before its certificate` });
  }
  if (policy.renewBeforeMs >= policy.validityMs) {
    problems.push({ code: "certs.renew-before", path: "--renew-before", message: `${fmt(policy.renewBeforeMs)} is not shorter than --validity ${fmt(policy.validityMs)}: every run would renew` });
  }
  return problems;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates of a bundle, in order, each with LF line ends and a final newline. */
export function splitPemBundle(bundle: string): string[] {
  return [...bundle.matchAll(PEM_CERTIFICATE)].map((match) => lf(match[0]));
}

/** node-forge writes PEM with CRLF; files and Secrets get LF, so that equal content is equal text. */
function lf(pem: string): string {
  const text = pem.replace(/\r\n/g, "\n");
  return text.endsWith("\n") ? text : `${text}\n`;
}

interface Parsed {
  cert: X509Certificate;
  bundle: Array<{ pem: string; x509: X509Certificate }>;
}

/** Parses an existing set; a set that cannot be what the webhook serves is an InputError. */
function parseSet(set: CertificateSet, place: string): Parsed {
  const problem = (path: string, message: string): InputError => new InputError([{ code: "certs.existing", path: `${place}: ${path}`, message }]);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(set.cert);
  } catch (error) {
    throw problem("tls.crt", `is not a PEM certificate (${(error as Error).message})`);
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(set.key))) throw problem("tls.key", "is not the key of tls.crt");
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw problem("tls.key", `is not a PEM private key (${(error as Error).message})`);
  }
  const pems = splitPemBundle(set.caBundle);
  if (pems.length === 0) throw problem("ca.crt", "holds no PEM certificate");
  const bundle = pems.map((pem, index) => {
    try {
      return { pem, x509: new X509Certificate(pem) };
    } catch (error) {
      throw problem(`ca.crt[${index}]`, `is not a certificate (${(error as Error).message})`);
    }
  });
  return { cert, bundle };
}

const issued = (cert: X509Certificate, ca: X509Certificate): boolean => cert.checkIssued(ca) && cert.verify(ca.publicKey);
const expiry = (cert: X509Certificate): Date => new Date(cert.validTo);

function sansOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? "")
    .split(", ")
    .filter((entry) => entry !== "")
    .map((entry) => entry.replace(/^DNS:/, ""))
    .sort();
}

/** Why the serving certificate must be replaced now; undefined when it may stay. */
function whyRenew(parsed: Parsed, policy: RotationPolicy, dnsNames: readonly string[], now: Date): string | undefined {
  if (policy.force) return "renewal forced (--force)";
  const issuer = parsed.bundle.find((ca) => issued(parsed.cert, ca.x509));
  if (!issuer) return "tls.crt is not signed by a CA in ca.crt";
  const have = sansOf(parsed.cert);
  const want = [...dnsNames].sort();
  if (have.join(",") !== want.join(",")) return `tls.crt names ${have.join(", ") || "nothing"}, the service needs ${want.join(", ")}`;
  const margin = formatDuration(policy.renewBeforeMs);
  for (const [name, cert] of [["tls.crt", parsed.cert], ["its CA", issuer.x509]] as const) {
    const left = expiry(cert).getTime() - now.getTime();
    if (left <= 0) return `${name} expired at ${expiry(cert).toISOString()}`;
    if (left < policy.renewBeforeMs) return `${name} expires at ${expiry(cert).toISOString()}, within --renew-before ${margin}`;
  }
  return undefined;
}

function bundleEntries(cert: X509Certificate, bundle: readonly string[]): BundleEntry[] {
  return bundle.map((pem) => {
    const ca = new X509Certificate(pem);
    return { subject: ca.subject, serialNumber: ca.serialNumber, notAfter: expiry(ca), issuesServing: issued(cert, ca) };
  });
}

function result(set: CertificateSet, action: RotationResult["action"], reason: string | undefined, dnsNames: string[], policy: RotationPolicy): RotationResult {
  const cert = new X509Certificate(set.cert);
  const bundle = bundleEntries(cert, splitPemBundle(set.caBundle));
  const issuer = bundle.find((entry) => entry.issuesServing);
  const due = Math.min(expiry(cert).getTime(), issuer?.notAfter.getTime() ?? Infinity) - policy.renewBeforeMs;
  return { set, action, ...(reason === undefined ? {} : { reason }), dnsNames, notAfter: expiry(cert), renewAt: new Date(due), bundle };
}

const DAY_MS = 86_400_000;

/** `nadguard-webhook-ca-20250102T030405Z`: which rotation a CA came from, readable in `openssl x509`. */
function caName(now: Date): string {
  return `nadguard-webhook-ca-${now.toISOString().replace(/[-:]|\.\d+/g, "")}`;
}

/**
 * Decides what the webhook serves next. `existing` undefined: a first set. Otherwise the same set
 * when nothing is due (action `unchanged`), the set with expired CAs dropped from its bundle
 * (`pruned`), or a new CA and serving certificate with the previous CA still trusted (`issued`).
 * Throws InputError when `existing` is unusable (not PEM, a key of another certificate) unless
 * `policy.force`: replacing it would silently drop the CA the webhook may still be serving under.
 * `now` decides what is due; new certificates are dated by the real clock.
 */
export function rotate(existing: CertificateSet | undefined, policy: RotationPolicy, now = new Date()): RotationResult {
  const dnsNames = servingDnsNames(policy.service, policy.namespace, policy.clusterDomain);
  let parsed: Parsed | undefined;
  try {
    parsed = existing && parseSet(existing, "existing certificates");
  } catch (error) {
    if (!policy.force) throw error;
  }
  const reason = !existing ? "no certificate yet" : !parsed ? "renewal forced (--force) over unusable files" : whyRenew(parsed, policy, dnsNames, now);

  if (reason === undefined && parsed && existing) {
    const kept = parsed.bundle.filter((ca) => issued(parsed.cert, ca.x509) || expiry(ca.x509) > now);
    const unique = kept.filter((ca, index) => kept.findIndex((other) => other.x509.fingerprint256 === ca.x509.fingerprint256) === index);
    if (unique.length === parsed.bundle.length) return result(existing, "unchanged", undefined, dnsNames, policy);
    const dropped = parsed.bundle.length - unique.length;
    const set = { ...existing, caBundle: unique.map((ca) => ca.pem).join("") };
    return result(set, "pruned", `${dropped} expired or duplicate CA certificate(s) left ca.crt`, dnsNames, policy);
  }

  const ca = generateCa({ commonName: caName(new Date()), validityDays: policy.caValidityMs / DAY_MS });
  const serving = generateServingCertificate(ca, { dnsNames, ipAddresses: [], validityDays: policy.validityMs / DAY_MS });
  // The CA of the pair being replaced, while that pair can still be served (see the file comment).
  const previous = parsed && expiry(parsed.cert) > now ? parsed.bundle.find((entry) => issued(parsed.cert, entry.x509)) : undefined;
  const caBundle = [lf(ca.cert), ...(previous ? [previous.pem] : [])].join("");
  return result({ caBundle, cert: lf(serving.cert), key: lf(serving.key) }, "issued", reason, dnsNames, policy);
}
