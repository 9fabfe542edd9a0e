// Certificate generation for the webhook's serving certificate: a private CA (whose PEM becomes the
// webhook configurations' caBundle) and a serving certificate it signs. node-forge builds and signs
// the X.509 structures; the RSA keys come from node:crypto, whose native keygen takes ~100 ms for
// 2048 bits (measured here), so nothing depends on whether forge detects it by itself (forge's pure
// JavaScript fallback took ~370 ms and varies far more).
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import type Forge from "node-forge";

/**
 * node-forge, loaded on first use: it is a tenth of a second of CPU at start-up that the commands
 * which only read certificates (`admit`, or `webhook` reusing its development certificates) skip.
 */
let loaded: typeof Forge | undefined;
function forgeLib(): typeof Forge {
  loaded ??= createRequire(import.meta.url)("node-forge") as typeof Forge;
  return loaded;
}

/** A certificate and its private key, both PEM. */
export interface PemPair {
  cert: string;
  /** PKCS#8 (`-----BEGIN PRIVATE KEY-----`), unencrypted. */
  key: string;
}

export interface CaOptions {
  commonName: string;
  validityDays: number;
}

export interface ServingCertificateOptions {
  /** Subject alternative names of type DNS, e.g. `nadguard.nadguard-system.svc`. */
  dnsNames: readonly string[];
  /** Subject alternative names of type IP, IPv4 or IPv6. */
  ipAddresses: readonly string[];
  validityDays: number;
  /** Defaults to the first DNS name, else the first IP address. Clients match SANs, not the CN. */
  commonName?: string;
}

const RSA_BITS = 2048;
/** notBefore is backdated so that a peer whose clock is a little behind still accepts the certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Generates a self-signed CA that may sign certificates (basicConstraints cA, keyCertSign). */
export function generateCa(options: CaOptions): PemPair {
  const { key, forgeKey } = generateRsaKey();
  const cert = newCertificate(forgeKey.publicKey, options.validityDays);
  const subject = [{ name: "commonName", value: options.commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(forgeKey.privateKey, forgeLib().md.sha256.create());
  return { cert: forgeLib().pki.certificateToPem(cert), key };
}

/**
 * Generates a TLS server certificate signed by `ca`, with the given DNS and IP SANs and the
 * serverAuth extended key usage. Throws when no name is given or an IP address does not parse.
 */
export function generateServingCertificate(ca: PemPair, options: ServingCertificateOptions): PemPair {
  const commonName = options.commonName ?? options.dnsNames[0] ?? options.ipAddresses[0];
  if (commonName === undefined) throw new Error("a serving certificate needs at least one DNS name or IP address");
  const caCert = forgeLib().pki.certificateFromPem(ca.cert);
  const caKey = forgeLib().pki.privateKeyFromPem(ca.key);
  const { key, forgeKey } = generateRsaKey();
  const cert = newCertificate(forgeKey.publicKey, options.validityDays);
  cert.setSubject([{ name: "commonName", value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: altNames(options) },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forgeLib().md.sha256.create());
  return { cert: forgeLib().pki.certificateToPem(cert), key };
}

function generateRsaKey(): { key: string; forgeKey: Forge.pki.rsa.KeyPair } {
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: RSA_BITS,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const forgePrivate = forgeLib().pki.privateKeyFromPem(privateKey) as Forge.pki.rsa.PrivateKey;
  const forgePublic = forgeLib().pki.rsa.setPublicKey(forgePrivate.n, forgePrivate.e);
  return { key: privateKey, forgeKey: { privateKey: forgePrivate, publicKey: forgePublic } };
}

function newCertificate(publicKey: Forge.pki.rsa.PublicKey, validityDays: number): Forge.pki.Certificate {
  if (!(validityDays > 0)) throw new Error(`validityDays must be positive, got ${validityDays}`);
  const cert = forgeLib().pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerialNumber();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now + validityDays * DAY_MS);
  return cert;
}

/**
 * 128 random bits as hex (RFC 5280 §4.1.2.2: positive, at most 20 octets). forge writes the hex
 * as the INTEGER's bytes unchanged, so the first byte must be 0x01..0x7f: a high bit would make
 * the serial negative and a zero byte would be a non-minimal encoding.
 */
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString("hex");
}

type AltName = { type: 2; value: string } | { type: 7; ip: string };

function altNames(options: ServingCertificateOptions): AltName[] {
  const badIp = options.ipAddresses.find((ip) => isIP(ip) === 0);
  if (badIp !== undefined) throw new Error(`ipAddresses: "${badIp}" is not an IPv4 or IPv6 address`);
  return [
    ...options.dnsNames.map((value): AltName => ({ type: 2, value })),
    ...options.ipAddresses.map((ip): AltName => ({ type: 7, ip })),
  ];
}
