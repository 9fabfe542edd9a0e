// A real TLS socket on 127.0.0.1: HTTP/1.1 and HTTP/2 on one port, and the certificate rotated
// under a running server.
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type PemPair, generateCa, generateServingCertificate } from "../certs/generate.js";
import Fastify from "fastify";
import { type RunningWebhook, startWebhook } from "./start.js";
import { readTlsMaterial, startTlsReloader } from "./tls.js";
import { baseOptions, getHttp1, podReview, postHttp1, postHttp2, servedCertificate } from "../test/support/webhook.js";

const hosts = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityDays: 1 };
function issue(): { ca: PemPair; serving: PemPair } {
  const ca = generateCa({ commonName: `test-ca-${Math.random()}`, validityDays: 1 });
  return { ca, serving: generateServingCertificate(ca, hosts) };
}
const serial = (pem: string): string => new X509Certificate(pem).serialNumber;

async function until<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let dir: string;
let running: RunningWebhook | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-tls-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function serveFrom(certFile: string, keyFile: string, pollMs?: number): Promise<RunningWebhook> {
  running = await startWebhook({
    ...baseOptions({
      mutate: (request) => ({ uid: request.uid, allowed: true, warnings: [`served ${request.operation}`] }),
      tls: { certFile, keyFile },
      tlsPollIntervalMs: pollMs,
    }),
    host: "127.0.0.1",
    port: 0,
  });
  return running;
}

async function writePair(sub: string, pair: PemPair): Promise<{ certFile: string; keyFile: string }> {
  const at = join(dir, sub);
  await mkdir(at, { recursive: true });
  const certFile = join(at, "tls.crt");
  const keyFile = join(at, "tls.key");
  await writeFile(certFile, pair.cert);
  await writeFile(keyFile, pair.key, { mode: 0o600 });
  return { certFile, keyFile };
}

describe("startTlsReloader", () => {
  it("picks up a change by its stat poll alone and keeps the old pair while the new one is broken", async () => {
    const first = issue();
    const files = await writePair("polled", first.serving);
    const applied: string[] = [];
    const reloader = startTlsReloader({
      files,
      initial: await readTlsMaterial(files),
      apply: (context) => applied.push(String(context.cert)),
      log: Fastify({ logger: false }).log, // a no-op logger
      pollIntervalMs: 50,
      watch: false,
    });
    try {
      const second = issue();
      await writeFile(files.certFile, second.serving.cert);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(applied).toEqual([]); // the key of the old pair does not fit: nothing applied
      expect(reloader.current.serialNumber).toBe(serial(first.serving.cert));
      await writeFile(files.keyFile, second.serving.key);
      await until(async () => applied.length, (length) => length > 0);
      expect(applied).toEqual([second.serving.cert]);
      expect(reloader.current.serialNumber).toBe(serial(second.serving.cert));
    } finally {
      reloader.stop();
    }
  });
});

describe("the webhook over TLS", () => {
  it("answers an AdmissionReview over HTTP/1.1 and over HTTP/2 on the same port", async () => {
    const { ca, serving } = issue();
    const files = await writePair("both", serving);
    const { port, address } = await serveFrom(files.certFile, files.keyFile);
    expect(address).toBe(`https://127.0.0.1:${port}`);
    const expected = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "h", allowed: true, warnings: ["served CREATE"] } };

    const overHttp1 = await postHttp1(port, ca.cert, "/mutate?timeout=10s", podReview("h"));
    expect(overHttp1).toMatchObject({ status: 200, protocol: false });
    expect(JSON.parse(overHttp1.body)).toEqual(expected);

    const overHttp2 = await postHttp2(port, ca.cert, "/mutate?timeout=10s", podReview("h"));
    expect(overHttp2).toMatchObject({ status: 200, protocol: "h2" });
    expect(JSON.parse(overHttp2.body)).toEqual(expected);
    expect(String(overHttp2.headers["content-type"])).toMatch(/^application\/json/);

    expect((await getHttp1(port, ca.cert, "/readyz")).status).toBe(200);
  });

  it("serves a rotated certificate to new connections without a restart, after reloadTls()", async () => {
    const first = issue();
    const files = await writePair("manual", first.serving);
    const { app, port } = await serveFrom(files.certFile, files.keyFile, 60_000);
    expect((await servedCertificate(port)).serialNumber).toBe(serial(first.serving.cert));

    const second = issue();
    await writeFile(files.keyFile, second.serving.key);
    await writeFile(files.certFile, second.serving.cert);
    expect(await app.reloadTls()).toBe("reloaded");
    expect(await app.reloadTls()).toBe("unchanged");
    const served = await servedCertificate(port);
    expect(served.serialNumber).toBe(serial(second.serving.cert));
    expect(served.checkIssued(new X509Certificate(second.ca.cert))).toBe(true);
    const response = await postHttp2(port, second.ca.cert, "/mutate", podReview("after"));
    expect(JSON.parse(response.body).response).toMatchObject({ uid: "after", allowed: true });
  });

  it("follows a Kubernetes secret volume update (the ..data symlink swap) by itself", async () => {
    // The layout kubelet writes: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/.
    const volume = join(dir, "volume");
    const first = issue();
    await writePair(join("volume", "..2024_01"), first.serving);
    await symlink("..2024_01", join(volume, "..data"));
    await symlink(join("..data", "tls.crt"), join(volume, "tls.crt"));
    await symlink(join("..data", "tls.key"), join(volume, "tls.key"));
    const { port } = await serveFrom(join(volume, "tls.crt"), join(volume, "tls.key"), 60_000);
    expect((await servedCertificate(port)).serialNumber).toBe(serial(first.serving.cert));

    const second = issue();
    await writePair(join("volume", "..2024_02"), second.serving);
    await symlink("..2024_02", join(volume, "..data_tmp"));
    await rename(join(volume, "..data_tmp"), join(volume, "..data"));

    const served = await until(() => servedCertificate(port), (cert) => cert.serialNumber === serial(second.serving.cert));
    expect(served.serialNumber).toBe(serial(second.serving.cert));
  });

  it("keeps the certificate in use when the new files do not match (a half-written rotation)", async () => {
    const first = issue();
    const files = await writePair("half", first.serving);
    const { app, port } = await serveFrom(files.certFile, files.keyFile, 60_000);
    const second = issue();
    await writeFile(files.certFile, second.serving.cert); // the key is not there yet
    expect(await app.reloadTls()).toBe("failed");
    expect((await servedCertificate(port)).serialNumber).toBe(serial(first.serving.cert));
    await writeFile(files.certFile, "-----BEGIN CERTIFICATE-----\ntruncated");
    expect(await app.reloadTls()).toBe("failed");
    expect((await servedCertificate(port)).serialNumber).toBe(serial(first.serving.cert));

    await writeFile(files.certFile, second.serving.cert);
    await writeFile(files.keyFile, second.serving.key);
    expect(await app.reloadTls()).toBe("reloaded");
    const metrics = (await app.inject({ method: "GET", url: "/metrics" })).body;
    // At least: the watcher may have seen the same half-written states as well.
    const count = (result: string): number => Number(new RegExp(`nadguard_tls_reloads_total\\{result="${result}"\\} (\\d+)`).exec(metrics)?.[1]);
    expect(count("failure")).toBeGreaterThanOrEqual(2);
    expect(count("success")).toBeGreaterThanOrEqual(1);
    const notAfter = new Date(new X509Certificate(second.serving.cert).validTo).getTime() / 1000;
    expect(metrics).toContain(`nadguard_tls_certificate_not_after_seconds ${notAfter}`);
  });

  it("refuses to start when the key does not belong to the certificate", async () => {
    const files = await writePair("mismatch", issue().serving);
    await writeFile(files.keyFile, issue().serving.key);
    await expect(serveFrom(files.certFile, files.keyFile)).rejects.toThrow(/is not the key of/);
  });
});
