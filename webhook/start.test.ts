// Listening and draining on a real TLS socket: what kube-apiserver sees when a replica stops.
import * as http2 from "node:http2";
import * as https from "node:https";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generateCa, generateServingCertificate } from "../certs/generate.js";
import type { ReviewHandler } from "./contract.js";
import { type RunningWebhook, type StartWebhookOptions, startWebhook } from "./start.js";
import { type ClientResponse, baseOptions, getHttp1, podReview, postHttp1, postHttp2 } from "../test/support/webhook.js";

let dir: string;
let ca: string;
let tls: { certFile: string; keyFile: string };
const started: RunningWebhook[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-start-"));
  const authority = generateCa({ commonName: "drain-test-ca", validityDays: 1 });
  const serving = generateServingCertificate(authority, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityDays: 1 });
  ca = authority.cert;
  tls = { certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
  await writeFile(tls.certFile, serving.cert);
  await writeFile(tls.keyFile, serving.key);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.close()));
});

async function start(overrides: Partial<StartWebhookOptions> = {}): Promise<RunningWebhook> {
  const server = await startWebhook({ ...baseOptions({ tls }), host: "127.0.0.1", port: 0, ...overrides });
  started.push(server);
  return server;
}

/** A handler that reports when it starts and answers after `ms`. */
function slowWithStart(ms: number): { handler: ReviewHandler; running: Promise<void> } {
  let markRunning: () => void = () => undefined;
  const running = new Promise<void>((resolve) => (markRunning = resolve));
  const handler: ReviewHandler = (request) => {
    markRunning();
    return new Promise((resolve) => setTimeout(() => resolve({ uid: request.uid, allowed: true, warnings: ["slow"] }), ms));
  };
  return { handler, running };
}

type Post = (port: number, ca: string, path: string, body: unknown) => Promise<ClientResponse>;

describe("startWebhook drain", () => {
  it.each([
    ["HTTP/1.1", postHttp1],
    ["HTTP/2", postHttp2],
  ] as Array<[string, Post]>)("lets a review in flight over %s finish with its 200 when close() starts", async (_protocol, post) => {
    const { handler, running } = slowWithStart(400);
    const server = await start({ validate: handler });
    const answer = post(server.port, ca, "/validate?timeout=10s", podReview("in-flight"));
    await running;
    const order: string[] = [];
    const closing = server.close().then(() => order.push("closed"));
    const response = await answer.then((value) => {
      order.push("answered");
      return value;
    });
    await closing;
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body).response).toEqual({ uid: "in-flight", allowed: true, warnings: ["slow"] });
    expect(order).toEqual(["answered", "closed"]);
  });

  it("closes an idle HTTP/1.1 keep-alive connection once its in-flight review is answered", async () => {
    const { handler, running } = slowWithStart(300);
    const server = await start({ validate: handler });
    const agent = new https.Agent({ keepAlive: true, ca });
    try {
      const answer = postHttp1(server.port, ca, "/validate", podReview("kept"), agent);
      await running;
      const t0 = performance.now();
      await server.close();
      const response = await answer;
      expect(response.status).toBe(200);
      expect(response.headers.connection).toBe("close");
      expect(performance.now() - t0).toBeLessThan(1_000);
    } finally {
      agent.destroy();
    }
  });

  it("turns /readyz to 503 as soon as the drain begins, while still serving during the drain delay", async () => {
    const server = await start({ drainDelayMs: 500 });
    expect((await getHttp1(server.port, ca, "/readyz")).status).toBe(200);
    const closing = server.close();
    const readyz = await getHttp1(server.port, ca, "/readyz");
    expect(readyz).toMatchObject({ status: 503, body: "draining" });
    expect((await getHttp1(server.port, ca, "/healthz")).status).toBe(200);
    const review = await postHttp1(server.port, ca, "/mutate", podReview("late"));
    expect(JSON.parse(review.body).response).toEqual({ uid: "late", allowed: true });
    await closing;
    await expect(getHttp1(server.port, ca, "/healthz")).rejects.toThrow(/ECONNREFUSED/);
  });

  it("does not wait for an idle HTTP/2 session the client keeps open (as kube-apiserver does)", async () => {
    const server = await start();
    const session = http2.connect(`https://127.0.0.1:${server.port}`, { ca });
    const sessionClosed = new Promise<void>((resolve) => session.on("close", () => resolve()));
    session.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ":path": "/healthz" });
      stream.on("error", reject);
      stream.resume();
      stream.on("end", () => resolve());
    });
    const t0 = performance.now();
    await server.close();
    expect(performance.now() - t0).toBeLessThan(1_000);
    await sessionClosed;
  });

  it("cuts a review that outlives the grace period", async () => {
    const { handler, running } = slowWithStart(10_000);
    const server = await start({ mutate: handler, gracePeriodMs: 200 });
    const answer = postHttp1(server.port, ca, "/mutate", podReview("stuck")).then(
      () => "answered",
      () => "cut",
    );
    await running;
    const t0 = performance.now();
    await server.close();
    expect(performance.now() - t0).toBeLessThan(1_500);
    expect(await answer).toBe("cut");
  });

  it("returns the same promise from every close() and settles `closed`", async () => {
    const server = await start();
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    await expect(server.closed).resolves.toBeUndefined();
  });

  it("drains on SIGTERM when asked to handle signals, and stops listening for them afterwards", async () => {
    const before = process.listenerCount("SIGTERM");
    const beforeInt = process.listenerCount("SIGINT");
    const server = await start({ handleSignals: true });
    expect(process.listenerCount("SIGTERM")).toBe(before + 1);
    // Call the listener it installed rather than signal the test process itself.
    const listener = process.listeners("SIGTERM").at(-1) as (signal: NodeJS.Signals) => void;
    listener("SIGTERM");
    await server.closed;
    expect(process.listenerCount("SIGTERM")).toBe(before);
    expect(process.listenerCount("SIGINT")).toBe(beforeInt);
  });
});
