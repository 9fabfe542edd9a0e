// Zero failed reviews across a certificate rotation under load. The real
// server (webhook/start.ts) serves from certificate files in a temporary directory while HTTP/1.1
// and HTTP/2 clients on 127.0.0.1 keep posting AdmissionReviews, trusting what kube-apiserver
// would trust: the caBundle. The rotation runs in the order `nadguard certs` and the README give:
// 1. the new caBundle (new CA + old CA) reaches the clients (the webhook configurations are patched);
// 2. the files are replaced, either as `nadguard certs --out-dir` writes them (atomic renames of
//    ca.crt, tls.key, tls.crt) or as the kubelet updates a Secret volume (a new `..<timestamp>`
//    directory, then the `..data` symlink swapped by rename);
// 3. the server reloads by itself (fs.watch, stat poll) and new connections get the new certificate,
//    while connections opened before keep the old one and keep working.
import { X509Certificate } from "node:crypto";
import * as http2 from "node:http2";
import * as https from "node:https";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CertificateSet, type RotationPolicy, rotate } from "../../certs/rotation.js";
import { writeCertDir } from "../../certs/secret.js";
import type { ReviewHandler } from "../../webhook/contract.js";
import { type RunningWebhook, startWebhook } from "../../webhook/start.js";
import { baseOptions, podReview, postHttp1, servedCertificate } from "../support/webhook.js";

const DAY = 86_400_000;
const policy: RotationPolicy = { service: "nadguard-webhook", namespace: "nadguard", validityMs: 30 * DAY, caValidityMs: 30 * DAY, renewBeforeMs: 7 * DAY };
/** The certificates name the Service, as in a cluster; the clients connect to 127.0.0.1 under that name. */
const SERVERNAME = "nadguard-webhook.nadguard.svc";
const REQUEST_TIMEOUT_MS = 5_000;
const serial = (pem: string): string => new X509Certificate(pem).serialNumber;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Sample {
  client: string;
  /** A connection opened for this request (true) or one reused from before (false). */
  fresh: boolean;
  startedAt: number;
  serial?: string;
  failure?: string;
}

interface Answer {
  status: number;
  body: string;
  serial: string | undefined;
}

/** What each request checks: a 200 with the AdmissionReview answer for its own uid. */
function judge(answer: Answer, uid: string): string | undefined {
  if (answer.status !== 200) return `HTTP ${answer.status}: ${answer.body.slice(0, 200)}`;
  const response = (JSON.parse(answer.body) as { response?: { uid?: string; allowed?: boolean } }).response;
  return response?.uid === uid && response.allowed === true ? undefined : `unexpected review answer ${answer.body.slice(0, 200)}`;
}

/**
 * The serial of the certificate a connection was opened with. Read once, when the connection is
 * new: node does not keep the peer certificate readable for the later requests of a reused socket.
 */
const connectionSerials = new WeakMap<object, string>();
function peerSerial(connection: object, socket: TLSSocket): string | undefined {
  const known = connectionSerials.get(connection);
  if (known !== undefined) return known;
  const serialNumber = socket.getPeerX509Certificate()?.serialNumber;
  if (serialNumber !== undefined) connectionSerials.set(connection, serialNumber);
  return serialNumber;
}

function http1(port: number, ca: string, uid: string, agent: https.Agent | false): Promise<Answer & { reused: boolean }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(podReview(uid));
    const request = https.request(
      {
        host: "127.0.0.1",
        servername: SERVERNAME,
        port,
        path: "/mutate?timeout=5s",
        method: "POST",
        ca,
        agent,
        timeout: REQUEST_TIMEOUT_MS,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (response) => {
        const socket = response.socket as TLSSocket;
        const serialNumber = peerSerial(socket, socket);
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), serial: serialNumber, reused: request.reusedSocket }));
        response.on("error", reject);
      },
    );
    request.on("timeout", () => request.destroy(new Error("request timed out")));
    request.on("error", reject);
    request.end(payload);
  });
}

function http2Session(port: number, ca: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: SERVERNAME });
    session.once("connect", () => {
      peerSerial(session, session.socket as TLSSocket);
      resolve(session);
    });
    session.once("error", reject);
  });
}

function http2Request(session: http2.ClientHttp2Session, uid: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": "/mutate?timeout=5s", "content-type": "application/json" });
    stream.setTimeout(REQUEST_TIMEOUT_MS, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString("utf8"), serial: connectionSerials.get(session) }));
    stream.on("error", reject);
    stream.end(JSON.stringify(podReview(uid)));
  });
}

/**
 * Concurrent clients, each looping until stop(): HTTP/1.1 with a new connection per request,
 * HTTP/1.1 keep-alive, HTTP/2 with a new session per request, HTTP/2 on one long-lived session.
 * New connections trust `trust()` at the time they are opened, as kube-apiserver uses the
 * caBundle it has when it dials.
 */
function startLoad(port: number, trust: () => string, maxRequests: number) {
  const samples: Sample[] = [];
  let stopped = false;
  let count = 0;
  const more = (): boolean => !stopped && count < maxRequests;
  const record = async (client: string, fresh: boolean, send: (uid: string) => Promise<Answer & { reused?: boolean }>): Promise<void> => {
    const uid = `${client}-${count++}`;
    const sample: Sample = { client, fresh, startedAt: Date.now() };
    samples.push(sample);
    try {
      const answer = await send(uid);
      if (answer.reused !== undefined) sample.fresh = !answer.reused;
      sample.serial = answer.serial;
      const failure = judge(answer, uid);
      if (failure) sample.failure = failure;
    } catch (error) {
      sample.failure = (error as Error).message;
    }
  };

  const h1Fresh = async (client: string): Promise<void> => {
    while (more()) await record(client, true, (uid) => http1(port, trust(), uid, false));
  };
  const h1KeepAlive = async (client: string): Promise<void> => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (more()) await record(client, false, (uid) => http1(port, trust(), uid, agent));
    } finally {
      agent.destroy();
    }
  };
  const h2Fresh = async (client: string): Promise<void> => {
    while (more()) {
      await record(client, true, async (uid) => {
        const session = await http2Session(port, trust());
        try {
          return await http2Request(session, uid);
        } finally {
          session.close();
        }
      });
    }
  };
  const h2Long = async (client: string): Promise<void> => {
    let session: http2.ClientHttp2Session | undefined;
    try {
      while (more()) {
        const reuse = session !== undefined && !session.closed && !session.destroyed;
        await record(client, !reuse, async (uid) => {
          if (!reuse) session = await http2Session(port, trust());
          return http2Request(session!, uid);
        });
      }
    } finally {
      session?.close();
    }
  };

  const clients = [
    ...[1, 2, 3].map((i) => h1Fresh(`h1-fresh-${i}`)),
    ...[1, 2].map((i) => h1KeepAlive(`h1-keepalive-${i}`)),
    ...[1, 2, 3].map((i) => h2Fresh(`h2-fresh-${i}`)),
    ...[1, 2].map((i) => h2Long(`h2-session-${i}`)),
  ];
  return {
    samples,
    async stop(): Promise<Sample[]> {
      stopped = true;
      await Promise.all(clients);
      return samples;
    },
  };
}

/** How files reach the server: `nadguard certs --out-dir`, or a kubelet-updated Secret volume. */
interface Layout {
  name: string;
  /** Writes the first set; returns the paths the server is started with. */
  install(dir: string, set: CertificateSet): Promise<{ certFile: string; keyFile: string }>;
  replace(dir: string, set: CertificateSet): Promise<void>;
}

const layouts: Layout[] = [
  {
    name: "files replaced by atomic rename (nadguard certs --out-dir)",
    async install(dir, set) {
      await writeCertDir(dir, set);
      return { certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
    },
    async replace(dir, set) {
      await writeCertDir(dir, set);
    },
  },
  {
    name: "a Secret volume updated by the kubelet (..data symlink swap)",
    async install(dir, set) {
      await writeTimestamped(dir, "..2025_01_01_00_00_00.000000001", set);
      await symlink("..2025_01_01_00_00_00.000000001", join(dir, "..data"));
      for (const name of ["ca.crt", "tls.crt", "tls.key"]) await symlink(join("..data", name), join(dir, name));
      return { certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
    },
    async replace(dir, set) {
      // The kubelet's AtomicWriter: write the new payload aside, point ..data_tmp at it, rename.
      await writeTimestamped(dir, "..2025_01_01_00_01_00.000000002", set);
      await symlink("..2025_01_01_00_01_00.000000002", join(dir, "..data_tmp"));
      await rename(join(dir, "..data_tmp"), join(dir, "..data"));
    },
  },
];

async function writeTimestamped(dir: string, name: string, set: CertificateSet): Promise<void> {
  const at = join(dir, name);
  await mkdir(at, { recursive: true });
  await writeFile(join(at, "ca.crt"), set.caBundle);
  await writeFile(join(at, "tls.crt"), set.cert);
  await writeFile(join(at, "tls.key"), set.key, { mode: 0o600 });
}

async function until(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await sleep(25);
  }
  return false;
}

let root: string;
let first: CertificateSet;
let second: CertificateSet;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "nadguard-rotation-"));
  first = rotate(undefined, policy).set;
  // What `nadguard certs` produces when the renewal is due: a new pair, caBundle = new CA + old CA.
  const renewed = rotate(first, { ...policy, force: true });
  expect(renewed.bundle).toHaveLength(2);
  second = renewed.set;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const answerAllowed: ReviewHandler = (request) => ({ uid: request.uid, allowed: true });

describe("a certificate rotation under concurrent load", () => {
  it.each(layouts.map((layout) => [layout.name, layout]))("fails no review: %s", async (_name, layout) => {
    const dir = join(root, layout.name.replace(/\W+/g, "-"));
    await mkdir(dir, { recursive: true });
    const files = await layout.install(dir, first);
    let server: RunningWebhook | undefined;
    let load: ReturnType<typeof startLoad> | undefined;
    try {
      server = await startWebhook({ ...baseOptions({ mutate: answerAllowed, tls: files, tlsPollIntervalMs: 200 }), host: "127.0.0.1", port: 0 });
      const { port } = server;
      expect((await servedCertificate(port)).serialNumber).toBe(serial(first.cert));

      // The control: a client that trusts only the new CA cannot talk to the old certificate,
      // so the clients below do verify what they are served.
      const newCaOnly = second.caBundle.slice(0, second.caBundle.indexOf("-----END CERTIFICATE-----") + 26);
      await expect(postHttp1(port, newCaOnly, "/mutate", podReview("control"))).rejects.toThrow(/certificate/);

      let trust = first.caBundle;
      load = startLoad(port, () => trust, 50_000);
      // Counted, not timed: a loaded machine answers fewer reviews per second.
      const running = load;
      const clientCount = 10;
      const answeredSince = (t: number): Sample[] => running.samples.filter((s) => s.startedAt > t && s.serial !== undefined);
      const everyClientSince = (t: number, n: number): boolean => answeredSince(t).length >= n && new Set(answeredSince(t).map((s) => s.client)).size === clientCount;
      expect(await until(async () => everyClientSince(0, 100), 30_000)).toBe(true);
      trust = second.caBundle; // 1. the patched caBundle: new CA + old CA
      await sleep(200);
      const swappedAt = Date.now();
      await layout.replace(dir, second); // 2. the files
      const reloaded = await until(async () => (await servedCertificate(port)).serialNumber === serial(second.cert), 5_000); // 3.
      const reloadedAt = Date.now();
      expect(reloaded).toBe(true);
      expect(await until(async () => everyClientSince(reloadedAt, 100), 30_000)).toBe(true);
      const samples = await load.stop();
      load = undefined;

      const failures = samples.filter((s) => s.failure !== undefined);
      expect(failures.slice(0, 5)).toEqual([]);
      expect(samples.length).toBeGreaterThan(200);
      // Every kind of client kept working on both sides of the swap.
      for (const client of new Set(samples.map((s) => s.client))) {
        expect(samples.filter((s) => s.client === client && s.startedAt < swappedAt).length, client).toBeGreaterThan(0);
        expect(samples.filter((s) => s.client === client && s.startedAt > reloadedAt).length, client).toBeGreaterThan(0);
      }
      // New connections see the new certificate once it is loaded; before the swap, the old one.
      const fresh = samples.filter((s) => s.fresh);
      expect(fresh.filter((s) => s.startedAt > reloadedAt).every((s) => s.serial === serial(second.cert))).toBe(true);
      expect(fresh.filter((s) => s.startedAt < swappedAt).every((s) => s.serial === serial(first.cert))).toBe(true);
      // A connection opened before the rotation keeps its certificate and keeps being answered.
      expect(samples.some((s) => !s.fresh && s.startedAt > reloadedAt && s.serial === serial(first.cert))).toBe(true);
    } finally {
      await load?.stop();
      await server?.close();
    }
  }, 120_000);
});
