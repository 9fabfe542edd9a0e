// Shared by the webhook tests: AdmissionReview bodies, handlers and options that keep apps quiet.
import type { X509Certificate } from "node:crypto";
import * as http2 from "node:http2";
import * as https from "node:https";
import { Writable } from "node:stream";
import * as tls from "node:tls";
import type { TLSSocket } from "node:tls";
import type { AdmissionRequest, AdmissionResponse } from "../../src/api/admission-review.js";
import type { ReviewHandler, WebhookOptions } from "../../webhook/contract.js";

export function podReview(uid = "7f0c7a3e-0000-4000-8000-000000000001", request: Partial<AdmissionRequest> = {}): Record<string, unknown> {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      name: "web",
      namespace: "tenant-a",
      operation: "CREATE",
      userInfo: { username: "alice", groups: ["system:authenticated"] },
      object: { apiVersion: "v1", kind: "Pod", metadata: { name: "web", namespace: "tenant-a" }, spec: { containers: [{ name: "web" }] } },
      ...request,
    },
  };
}

export const allow: ReviewHandler = (request) => ({ uid: request.uid, allowed: true });

export function deny(reason: string, message = "denied by the test"): ReviewHandler {
  return (request): AdmissionResponse => ({ uid: request.uid, allowed: false, status: { code: 403, reason, message } });
}

/** Answers after `ms`, ignoring the review's signal (a handler that hangs). */
export function slow(ms: number, response: Omit<AdmissionResponse, "uid"> = { allowed: true }): ReviewHandler {
  return (request) => new Promise((resolve) => setTimeout(() => resolve({ uid: request.uid, ...response }), ms));
}

export function baseOptions(overrides: Partial<WebhookOptions> = {}): WebhookOptions {
  return { mutate: allow, validate: allow, isReady: () => true, logger: false, ...overrides };
}

/** A pino logger option that collects the JSON lines, for asserting on logs. */
export function captureLogs(): { logger: object; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    logger: { level: "info", stream },
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

export interface ClientResponse {
  status: number;
  headers: Record<string, unknown>;
  body: string;
  /** The ALPN protocol the connection negotiated ("h2", or false for HTTP/1.1 without ALPN). */
  protocol: string | false;
}

/** POSTs JSON over HTTP/1.1 trusting only `ca`, on a fresh connection unless an agent is given. */
export function postHttp1(port: number, ca: string, path: string, body: unknown, agent: https.Agent | false = false): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const request = https.request(
      { host: "127.0.0.1", port, path, method: "POST", ca, agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } },
      (response) => {
        const chunks: Buffer[] = [];
        // Read now: a keep-alive agent takes the socket back once the body has ended.
        const protocol = (response.socket as TLSSocket).alpnProtocol ?? false;
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8"), protocol }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(payload);
  });
}

/** GETs over HTTP/1.1, for the probes. */
export function getHttp1(port: number, ca: string, path: string): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, path, ca, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8"), protocol: false }),
        );
      })
      .on("error", reject);
  });
}

/** POSTs JSON over HTTP/2 (ALPN h2) on a fresh session trusting only `ca`. */
export async function postHttp2(port: number, ca: string, path: string, body: unknown): Promise<ClientResponse> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca });
  try {
    return await new Promise<ClientResponse>((resolve, reject) => {
      session.on("error", reject);
      const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
      let headers: Record<string, unknown> = {};
      const chunks: Buffer[] = [];
      stream.on("response", (received) => (headers = received));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () =>
        resolve({
          status: Number(headers[":status"]),
          headers,
          body: Buffer.concat(chunks).toString("utf8"),
          protocol: session.alpnProtocol ?? false,
        }),
      );
      stream.on("error", reject);
      stream.end(JSON.stringify(body));
    });
  } finally {
    session.close();
  }
}

/** The certificate a new TLS connection is served (not verified: the test compares serials). */
export function servedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
      const raw = socket.getPeerX509Certificate();
      socket.destroy();
      if (raw) resolve(raw);
      else reject(new Error("no peer certificate"));
    });
    socket.on("error", reject);
  });
}
