// Where `nadguard certs` keeps a CertificateSet between runs: a Secret manifest (type
// kubernetes.io/tls plus ca.crt, what the webhook Deployment mounts) or a directory of the same
// three files. Each is both the output and the state the next run reads, so a run that changes
// nothing writes nothing. Every write goes to a temporary file renamed over the target, so a
// reader (kubectl, the webhook's reloader) never sees half a file.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { InputError } from "../src/api/errors.js";
import type { CertificateSet } from "./rotation.js";

export interface SecretRef {
  name: string;
  namespace: string;
}

/** The keys of a kubernetes.io/tls Secret, plus ca.crt as cert-manager writes it. */
const KEYS = { caBundle: "ca.crt", cert: "tls.crt", key: "tls.key" } as const;

const HEADER = [
  "# Written by `nadguard certs`: the webhook's serving certificate and key, and in ca.crt the",
  "# webhook configurations' caBundle. It holds a private key: keep it out of version control.",
  "# `nadguard certs` reads it back on its next run, renews when due, and otherwise leaves it alone.",
].join("\n");

/** The Secret manifest, YAML; the same set always gives the same text. */
export function renderSecret(set: CertificateSet, ref: SecretRef): string {
  const b64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: ref.name,
      namespace: ref.namespace,
      labels: { "app.kubernetes.io/name": "nadguard", "app.kubernetes.io/component": "webhook" },
    },
    type: "kubernetes.io/tls",
    data: { [KEYS.caBundle]: b64(set.caBundle), [KEYS.cert]: b64(set.cert), [KEYS.key]: b64(set.key) },
  };
  return `${HEADER}\n${stringify(secret, { lineWidth: 0 })}`;
}

/** Reads a Secret manifest back (data or stringData); InputError naming the file when it is not one. */
export function parseSecret(text: string, file: string): CertificateSet {
  const problem = (message: string): InputError => new InputError([{ code: "certs.secret", path: file, message }]);
  const documents = parseAllDocuments(text);
  const list = (Array.isArray(documents) ? documents : [documents]).filter((doc) => doc.contents !== null);
  if (list.length !== 1 || list[0]!.errors.length > 0) throw problem("is not a single YAML document");
  const secret = list[0]!.toJS() as { kind?: unknown; data?: Record<string, unknown>; stringData?: Record<string, unknown> } | null;
  if (secret?.kind !== "Secret") throw problem("is not a Secret manifest");
  const value = (key: string): string => {
    const plain = secret.stringData?.[key];
    if (typeof plain === "string") return plain;
    const encoded = secret.data?.[key];
    if (typeof encoded !== "string") throw problem(`has no ${key}`);
    return Buffer.from(encoded, "base64").toString("utf8");
  };
  return { caBundle: value(KEYS.caBundle), cert: value(KEYS.cert), key: value(KEYS.key) };
}

/** The set in a Secret manifest; undefined when the file does not exist. */
export async function readSecretFile(file: string): Promise<CertificateSet | undefined> {
  const text = await readOptional(file);
  return text === undefined ? undefined : parseSecret(text, file);
}

/** Writes the Secret manifest (mode 0600) unless the file already holds exactly that; true when written. */
export async function writeSecretFile(file: string, set: CertificateSet, ref: SecretRef): Promise<boolean> {
  return writeIfChanged(file, renderSecret(set, ref), 0o600);
}

/** The files of a certificate directory, named as the Secret's keys. */
export function certDirFiles(dir: string): { caFile: string; certFile: string; keyFile: string } {
  return { caFile: join(dir, KEYS.caBundle), certFile: join(dir, KEYS.cert), keyFile: join(dir, KEYS.key) };
}

/** The set in a directory; undefined when none of the three files exists, InputError when only some do. */
export async function readCertDir(dir: string): Promise<CertificateSet | undefined> {
  const files = certDirFiles(dir);
  const [caBundle, cert, key] = await Promise.all([readOptional(files.caFile), readOptional(files.certFile), readOptional(files.keyFile)]);
  if (caBundle === undefined && cert === undefined && key === undefined) return undefined;
  if (caBundle === undefined || cert === undefined || key === undefined) {
    const missing = Object.entries({ [KEYS.caBundle]: caBundle, [KEYS.cert]: cert, [KEYS.key]: key })
      .filter(([, text]) => text === undefined)
      .map(([name]) => name);
    throw new InputError([{ code: "certs.dir", path: dir, message: `holds some certificate files but not ${missing.join(", ")}` }]);
  }
  return { caBundle, cert, key };
}

/**
 * Writes the changed files of a set, in the order that keeps a live reader working: ca.crt first
 * (trust the new CA before anything is served under it), then tls.key, then tls.crt (a reader
 * that sees the new certificate finds its key already there; one that sees the new key with the
 * old certificate keeps what it serves and retries, see webhook/tls.ts). Returns the files written.
 */
export async function writeCertDir(dir: string, set: CertificateSet): Promise<string[]> {
  const files = certDirFiles(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const written: string[] = [];
  if (await writeIfChanged(files.caFile, set.caBundle, 0o644)) written.push(files.caFile);
  if (await writeIfChanged(files.keyFile, set.key, 0o600)) written.push(files.keyFile);
  if (await writeIfChanged(files.certFile, set.cert, 0o644)) written.push(files.certFile);
  return written;
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new InputError([{ code: "certs.read", path: file, message: `cannot read: ${(error as Error).message}` }]);
  }
}

/** Atomic replace (temporary file, then rename); nothing happens when the content is already there. */
export async function writeIfChanged(file: string, content: string, mode: number): Promise<boolean> {
  if ((await readOptional(file)) === content) return false;
  await mkdir(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temporary, content, { mode });
  await rename(temporary, file);
  return true;
}
