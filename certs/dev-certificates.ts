// Development and self-managed certificates: keeps a CA and a serving certificate in a directory,
// named as the keys of a Kubernetes TLS secret (tls.crt, tls.key) plus ca.crt, reusing them while
// they still fit and replacing them otherwise. Files are replaced by rename, so a webhook watching
// the directory (webhook/tls.ts) never reads a half-written file.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { basename, join } from "node:path";
import { generateCa, generateServingCertificate } from "./generate.js";

export interface DevCertificateOptions {
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  /** Validity of a newly generated serving certificate; default 365. The CA gets ten times that. */
  validityDays?: number;
  /** The clock, for tests. */
  now?: Date;
}

export interface DevCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The CA certificate, PEM: what goes into the webhook configurations' caBundle (base64 of it). */
  caBundle: string;
  /** True when new files were written, false when the existing ones were reused. */
  generated: boolean;
  /** Why the files were (re)generated; absent when reused. */
  reason?: string;
}

/** Files closer than this to expiry are replaced rather than served. */
const MIN_REMAINING_MS = 24 * 60 * 60 * 1000;
const DEFAULT_VALIDITY_DAYS = 365;
const CA_NAME = "nadguard-dev-ca";

/**
 * Returns certificate files in `dir` valid for every requested DNS name and IP address: the
 * existing ca.crt/tls.crt/tls.key if they are a matching set, cover the hosts and do not expire
 * within a day; otherwise a new CA and serving certificate (private keys written with mode 0600).
 */
export async function ensureDevCertificates(dir: string, requested: DevCertificateOptions): Promise<DevCertificates> {
  // A host asked for twice (the listen address is also 127.0.0.1) is one SAN, not two.
  const options = { ...requested, dnsNames: unique(requested.dnsNames.map(dnsKey)), ipAddresses: unique(requested.ipAddresses.map(ipKey)) };
  const files = { caFile: join(dir, "ca.crt"), certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
  const now = options.now ?? new Date();
  const existing = await readExisting(files);
  const reason = existing.ok ? whyUnfit(existing.pems, options, now) : existing.reason;
  if (reason === undefined && existing.ok) {
    return { ...files, caBundle: existing.pems.ca, generated: false };
  }

  const validityDays = options.validityDays ?? DEFAULT_VALIDITY_DAYS;
  const ca = generateCa({ commonName: CA_NAME, validityDays: validityDays * 10 });
  const serving = generateServingCertificate(ca, {
    dnsNames: options.dnsNames,
    ipAddresses: options.ipAddresses,
    validityDays,
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Key before certificate: a reader that sees the new tls.crt then finds its key already there.
  await writeAtomically(files.keyFile, serving.key, 0o600);
  await writeAtomically(files.certFile, serving.cert, 0o644);
  await writeAtomically(files.caFile, ca.cert, 0o644);
  return { ...files, caBundle: ca.cert, generated: true, reason };
}

interface ExistingPems {
  ca: string;
  cert: string;
  key: string;
}

async function readExisting(files: {
  caFile: string;
  certFile: string;
  keyFile: string;
}): Promise<{ ok: true; pems: ExistingPems } | { ok: false; reason: string }> {
  try {
    // One after another: the first missing file named is always the same one (the CA).
    const ca = await readFile(files.caFile, "utf8");
    const cert = await readFile(files.certFile, "utf8");
    const key = await readFile(files.keyFile, "utf8");
    return { ok: true, pems: { ca, cert, key } };
  } catch (error) {
    const { code, path } = error as NodeJS.ErrnoException;
    return { ok: false, reason: code === "ENOENT" && path ? `no ${basename(path)} there yet` : `cannot read the existing files: ${(error as Error).message}` };
  }
}

/** Returns why the files cannot be reused, or undefined when they can. */
function whyUnfit(pems: ExistingPems, options: DevCertificateOptions, now: Date): string | undefined {
  let ca: X509Certificate;
  let serving: X509Certificate;
  try {
    ca = new X509Certificate(pems.ca);
    serving = new X509Certificate(pems.cert);
    if (!serving.checkPrivateKey(createPrivateKey(pems.key))) return "tls.key does not belong to tls.crt";
  } catch (error) {
    return `the existing files do not parse: ${(error as Error).message}`;
  }
  if (!serving.checkIssued(ca) || !serving.verify(ca.publicKey)) return "tls.crt is not signed by ca.crt";
  for (const [name, cert] of [["ca.crt", ca], ["tls.crt", serving]] as const) {
    if (new Date(cert.validFrom).getTime() > now.getTime()) return `${name} is not valid yet`;
    if (new Date(cert.validTo).getTime() - now.getTime() < MIN_REMAINING_MS) return `${name} expires within a day`;
  }
  // Exact names only: a wildcard SAN may cover a name yet not be what was asked for.
  const missingName = options.dnsNames.find((name) => serving.checkHost(name, { wildcards: false }) === undefined);
  if (missingName !== undefined) return `tls.crt does not name ${missingName}`;
  const missingIp = options.ipAddresses.find((ip) => serving.checkIP(ip) === undefined);
  if (missingIp !== undefined) return `tls.crt does not name ${missingIp}`;
  // ...and no more than was asked for: a name dropped from the list must stop being served.
  const requested = new Set([...options.dnsNames.map((name) => `DNS:${name}`), ...options.ipAddresses.map((ip) => `IP:${ip}`)]);
  const extra = sanKeys(serving).filter((san) => !requested.has(san));
  if (extra.length > 0) return `tls.crt names hosts that were not asked for: ${extra.join(", ")}`;
  return undefined;
}

const unique = (values: readonly string[]): string[] => [...new Set(values)];
const dnsKey = (name: string): string => name.toLowerCase();
/** One spelling per address: `::1` and `0:0:0:0:0:0:0:1` (how X509Certificate prints it) are the same SAN. */
function ipKey(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip; // a zone index (fe80::1%eth0) is no URL host; the generator rejects such a SAN anyway
  }
}

/** The certificate's SANs as `DNS:name` and `IP:address`, spelt as dnsKey and ipKey spell requests. */
function sanKeys(cert: X509Certificate): string[] {
  return (cert.subjectAltName?.split(", ") ?? []).map((entry) => {
    if (entry.startsWith("DNS:")) return `DNS:${dnsKey(entry.slice(4))}`;
    if (entry.startsWith("IP Address:")) return `IP:${ipKey(entry.slice(11))}`;
    return entry;
  });
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode });
  await rename(temporary, path);
}
