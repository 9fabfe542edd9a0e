import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureDevCertificates } from "./dev-certificates.js";

const hosts = { dnsNames: ["localhost", "nadguard.nadguard-system.svc"], ipAddresses: ["127.0.0.1"] };

describe("ensureDevCertificates", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "nadguard-certs-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("generates a CA, a serving certificate and a private key file only the owner can read", async () => {
    const result = await ensureDevCertificates(join(dir, "generated"), hosts);
    expect(result.generated).toBe(true);
    const ca = new X509Certificate(await readFile(result.caFile));
    const serving = new X509Certificate(await readFile(result.certFile));
    expect(result.caBundle).toBe(await readFile(result.caFile, "utf8"));
    expect(serving.checkIssued(ca)).toBe(true);
    expect(serving.checkHost("nadguard.nadguard-system.svc")).toBeDefined();
    expect((await stat(result.keyFile)).mode & 0o777).toBe(0o600);
  });

  it("reuses files that still fit", async () => {
    const first = await ensureDevCertificates(dir, hosts);
    const second = await ensureDevCertificates(dir, { ...hosts, dnsNames: [...hosts.dnsNames].reverse() });
    expect(second.generated).toBe(false);
    expect(second.caBundle).toBe(first.caBundle);
  });

  it("reuses files when a host is asked for twice or an IPv6 address is spelt another way", async () => {
    const first = await ensureDevCertificates(dir, { ...hosts, ipAddresses: ["127.0.0.1", "::1", "127.0.0.1"] });
    const before = await readFile(first.certFile, "utf8");
    expect(new X509Certificate(before).subjectAltName?.match(/IP Address:127\.0\.0\.1/g)).toHaveLength(1);
    const second = await ensureDevCertificates(dir, { ...hosts, ipAddresses: ["0:0:0:0:0:0:0:1", "127.0.0.1", "127.0.0.1"] });
    expect(second).toMatchObject({ generated: false, caBundle: first.caBundle });
    expect(await readFile(second.certFile, "utf8")).toBe(before);
  });

  it.each([
    ["a DNS name is added", { ...hosts, dnsNames: [...hosts.dnsNames, "nadguard.nadguard-system.svc.cluster.local"] }],
    ["an IP address changes", { ...hosts, ipAddresses: ["::1"] }],
    ["a name is dropped", { ...hosts, dnsNames: ["localhost"] }],
  ])("regenerates when %s", async (_why, changed) => {
    const first = await ensureDevCertificates(dir, hosts);
    const second = await ensureDevCertificates(dir, changed);
    expect(second.generated).toBe(true);
    expect(second.caBundle).not.toBe(first.caBundle);
    const serving = new X509Certificate(await readFile(second.certFile));
    for (const name of changed.dnsNames) expect(serving.checkHost(name)).toBe(name);
    for (const ip of changed.ipAddresses) expect(serving.checkIP(ip)).toBe(ip);
  });

  it("regenerates a certificate that expires within a day", async () => {
    await ensureDevCertificates(dir, { ...hosts, validityDays: 2 });
    const tomorrow = new Date(Date.now() + 36 * 60 * 60 * 1000);
    const again = await ensureDevCertificates(dir, { ...hosts, now: tomorrow });
    expect(again).toMatchObject({ generated: true, reason: "tls.crt expires within a day" });
  });

  it("regenerates when the key does not belong to the certificate", async () => {
    const first = await ensureDevCertificates(dir, hosts);
    const other = await ensureDevCertificates(join(dir, "other"), hosts);
    await writeFile(first.keyFile, await readFile(other.keyFile));
    const again = await ensureDevCertificates(dir, hosts);
    expect(again).toMatchObject({ generated: true, reason: "tls.key does not belong to tls.crt" });
  });
});
