import { X509Certificate, createPrivateKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generateCa, generateServingCertificate } from "./generate.js";

const DAY_MS = 24 * 60 * 60 * 1000;

describe("generateCa / generateServingCertificate", () => {
  const started = Date.now();
  const ca = generateCa({ commonName: "test-ca", validityDays: 30 });
  const serving = generateServingCertificate(ca, {
    dnsNames: ["nadguard.nadguard-system.svc", "localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
    validityDays: 7,
  });
  const caCert = new X509Certificate(ca.cert);
  const servingCert = new X509Certificate(serving.cert);

  it("makes a CA that may sign certificates", () => {
    expect(caCert.ca).toBe(true);
    expect(caCert.subject).toBe("CN=test-ca");
    expect(caCert.checkIssued(caCert)).toBe(true);
    expect(caCert.verify(caCert.publicKey)).toBe(true);
    expect(caCert.checkPrivateKey(createPrivateKey(ca.key))).toBe(true);
  });

  it("makes a serving certificate that verifies against the CA", () => {
    expect(servingCert.ca).toBe(false);
    expect(servingCert.checkIssued(caCert)).toBe(true);
    expect(servingCert.verify(caCert.publicKey)).toBe(true);
    expect(servingCert.checkPrivateKey(createPrivateKey(serving.key))).toBe(true);
    expect(servingCert.issuer).toBe("CN=test-ca");
    expect(servingCert.subject).toBe("CN=nadguard.nadguard-system.svc");
  });

  it("names every DNS name and IP address, for server authentication only", () => {
    expect(servingCert.checkHost("nadguard.nadguard-system.svc")).toBe("nadguard.nadguard-system.svc");
    expect(servingCert.checkHost("localhost")).toBe("localhost");
    expect(servingCert.checkHost("other.svc")).toBeUndefined();
    expect(servingCert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(servingCert.checkIP("::1")).toBe("::1");
    expect(servingCert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
  });

  it("is valid from a little before now for the requested days", () => {
    const from = new Date(servingCert.validFrom).getTime();
    const to = new Date(servingCert.validTo).getTime();
    expect(from).toBeLessThanOrEqual(started);
    expect(started - from).toBeLessThan(10 * 60 * 1000);
    expect(Math.abs(to - (started + 7 * DAY_MS))).toBeLessThan(60 * 1000);
    expect(Math.abs(new Date(caCert.validTo).getTime() - (started + 30 * DAY_MS))).toBeLessThan(60 * 1000);
  });

  it("gives every certificate a distinct positive serial", () => {
    const other = new X509Certificate(generateServingCertificate(ca, { dnsNames: ["a"], ipAddresses: [], validityDays: 1 }).cert);
    expect(other.serialNumber).not.toBe(servingCert.serialNumber);
    for (const cert of [caCert, servingCert, other]) expect(Number.parseInt(cert.serialNumber.slice(0, 2), 16)).toBeLessThan(0x80);
  });

  it("rejects a certificate with no names and an address that is not one", () => {
    expect(() => generateServingCertificate(ca, { dnsNames: [], ipAddresses: [], validityDays: 1 })).toThrow(/at least one/);
    expect(() => generateServingCertificate(ca, { dnsNames: ["a"], ipAddresses: ["300.1.1.1"], validityDays: 1 })).toThrow(
      /300\.1\.1\.1/,
    );
  });
});
