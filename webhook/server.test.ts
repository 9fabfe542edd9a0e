// Routes through app.inject(): no socket, plain HTTP.
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import type { AdmissionResponse, AdmissionStatus } from "../src/api/admission-review.js";
import type { RequestErrorBody } from "./admission-routes.js";
import type { WebhookApp, WebhookOptions } from "./contract.js";
import { buildWebhook } from "./server.js";
import { allow, baseOptions, captureLogs, deny, podReview, slow } from "../test/support/webhook.js";

const apps: WebhookApp[] = [];
async function build(overrides: Partial<WebhookOptions> = {}): Promise<WebhookApp> {
  const app = await buildWebhook(baseOptions(overrides));
  apps.push(app);
  return app;
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** Either an AdmissionReview response or a request error, as the tests read them. */
type Body = { response: AdmissionResponse & { status: AdmissionStatus } } & RequestErrorBody;

async function post(app: WebhookApp, url: string, payload: unknown) {
  const response = await app.inject({ method: "POST", url, payload: payload as object });
  return { status: response.statusCode, headers: response.headers, body: response.json<Body>() };
}

describe("POST /mutate and /validate", () => {
  it.each(["/mutate", "/validate"])("answers %s with an AdmissionReview echoing the request's uid", async (url) => {
    const app = await build({ mutate: (request) => ({ uid: "wrong", allowed: true }), validate: () => ({ uid: "", allowed: true }) });
    const { status, headers, body } = await post(app, url, podReview("uid-123"));
    expect(status).toBe(200);
    expect(headers["content-type"]).toMatch(/^application\/json/);
    expect(body).toEqual({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "uid-123", allowed: true } });
  });

  it.each([
    ["apiVersion", { ...podReview(), apiVersion: "admission.k8s.io/v1beta1" }],
    ["kind", { ...podReview(), kind: "Review" }],
    ["request.uid", podReview("")],
    ["request.operation", podReview("u", { operation: "PATCH" as never })],
    ["request.userInfo", podReview("u", { userInfo: undefined as never })],
    ["request", { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }],
  ])("rejects a review with a bad %s with 400 naming that path", async (path, payload) => {
    const { status, body } = await post(await build(), "/validate", payload);
    expect(status).toBe(400);
    expect(body.code).toBe("review.malformed");
    expect(body.problems.map((problem) => problem.path)).toContain(path);
    expect(body.message).toContain(path);
  });

  it("rejects a body that is not JSON with 400 and one that is not application/json with 415", async () => {
    const app = await build();
    const notJson = await app.inject({ method: "POST", url: "/mutate", headers: { "content-type": "application/json" }, payload: "{nope" });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({ code: "review.invalid-json" });
    const text = await app.inject({ method: "POST", url: "/mutate", headers: { "content-type": "text/plain" }, payload: "hello" });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toMatchObject({ code: "review.unsupported-media-type" });
  });

  it("accepts a review of 5 MiB (object and oldObject) and refuses one over 7 MiB with 413", async () => {
    const app = await build();
    const big = (size: number) => podReview("big", { object: { data: "x".repeat(size) } });
    expect((await post(app, "/validate", big(5 * 1024 * 1024))).status).toBe(200);
    const { status, body } = await post(app, "/validate", big(7 * 1024 * 1024));
    expect(status).toBe(413);
    expect(body.code).toBe("review.too-large");
  });

  it("sends a patch only together with patchType", async () => {
    const patch = Buffer.from("[]").toString("base64");
    const app = await build({
      mutate: (request) => ({ uid: request.uid, allowed: true, patch, patchType: "JSONPatch" }),
      validate: (request) => ({ uid: request.uid, allowed: true, patchType: "JSONPatch" }),
    });
    expect((await post(app, "/mutate", podReview("m"))).body.response).toEqual({ uid: "m", allowed: true, patch, patchType: "JSONPatch" });
    expect((await post(app, "/validate", podReview("v"))).body.response).toEqual({ uid: "v", allowed: true });
  });

  it("denies, with HTTP 200 and a 500 status, when the handler throws or patches without patchType", async () => {
    const app = await build({
      mutate: () => {
        throw new Error("snapshot not loaded");
      },
      validate: (request) => ({ uid: request.uid, allowed: true, patch: Buffer.from("[]").toString("base64") }),
    });
    const thrown = await post(app, "/mutate", podReview("t"));
    expect(thrown.status).toBe(200);
    expect(thrown.body.response).toEqual({
      uid: "t",
      allowed: false,
      status: { code: 500, reason: "InternalError", message: "nadguard internal error: snapshot not loaded" },
    });
    // A patch from /validate is dropped rather than refused: validating webhooks cannot patch.
    expect((await post(app, "/validate", podReview("v"))).body.response).toEqual({ uid: "v", allowed: true });
  });

  it("denies with a 504 status before kube-apiserver's ?timeout runs out, aborting the handler's signal", async () => {
    let aborted: unknown;
    const app = await build({
      validate: (request, { signal }) =>
        new Promise((resolve) => {
          signal.addEventListener("abort", () => (aborted = signal.reason));
          setTimeout(() => resolve({ uid: request.uid, allowed: true }), 2_000);
        }),
    });
    const started = performance.now();
    const { status, body } = await post(app, "/validate?timeout=1s", podReview("slow"));
    const took = performance.now() - started;
    expect(status).toBe(200);
    expect(body.response).toMatchObject({ uid: "slow", allowed: false, status: { code: 504, reason: "Timeout" } });
    expect(body.response.status.message).toMatch(/timed out inside nadguard after 900 ms/);
    expect(took).toBeGreaterThanOrEqual(850);
    expect(took).toBeLessThan(1_500); // generous for a loaded CI machine; the budget itself is asserted above
    expect((aborted as Error).name).toBe("TimeoutError");
  });

  it("uses defaultTimeoutMs when the request has no ?timeout", async () => {
    const app = await build({ defaultTimeoutMs: 300, mutate: slow(1_000) });
    const { body } = await post(app, "/mutate", podReview("d"));
    expect(body.response.status).toMatchObject({ code: 504 });
    expect(body.response.status.message).toMatch(/after 200 ms/);
  });

  it("logs one line per review with its uid, kind, operation, outcome and duration", async () => {
    const logs = captureLogs();
    const app = await build({ logger: logs.logger, validate: deny("NetworkNotAllowed") });
    await post(app, "/validate", podReview("log-uid"));
    const line = logs.lines().find((entry) => entry.msg === "admission review");
    expect(line).toMatchObject({ uid: "log-uid", kind: "v1/Pod", operation: "CREATE", namespace: "tenant-a", outcome: "denied", endpoint: "validate" });
    expect(typeof line?.durationMs).toBe("number");
  });

  it("logs a handler's throw as an error with the uid", async () => {
    const logs = captureLogs();
    const app = await build({
      logger: logs.logger,
      mutate: () => {
        throw new Error("boom");
      },
    });
    await post(app, "/mutate", podReview("err-uid"));
    expect(logs.lines().find((entry) => entry.level === 50)).toMatchObject({ uid: "err-uid", err: { message: "boom" } });
  });
});

describe("GET /healthz and /readyz", () => {
  it("is healthy while serving and ready only when isReady() says so and no drain has begun", async () => {
    let ready = false;
    const app = await build({ isReady: () => ready });
    const get = async (url: string) => (await app.inject({ method: "GET", url })).statusCode;
    expect(await get("/healthz")).toBe(200);
    expect(await get("/readyz")).toBe(503);
    ready = true;
    expect(await get("/readyz")).toBe(200);
    app.lifecycle.startDraining();
    expect(await get("/readyz")).toBe(503);
    expect(await get("/healthz")).toBe(200);
  });

  it("counts a review in flight until it is answered", async () => {
    const app = await build({ validate: slow(200) });
    const answer = post(app, "/validate", podReview("counted"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(app.lifecycle.inFlight).toBe(1);
    await answer;
    await app.lifecycle.whenIdle();
    expect(app.lifecycle.inFlight).toBe(0);
  });

  it("is not ready when isReady() throws", async () => {
    const app = await build({
      isReady: () => {
        throw new Error("no state");
      },
    });
    expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(503);
  });
});

describe("GET /metrics", () => {
  it("reports durations, outcomes and denial reasons of the reviews served", async () => {
    const app = await build({
      mutate: allow,
      validate: (request, ctx) => (request.uid === "boom" ? Promise.reject(new Error("x")) : deny("NetworkNotAllowed")(request, ctx)),
    });
    await post(app, "/mutate", podReview("a"));
    await post(app, "/validate", podReview("d1"));
    await post(app, "/validate", podReview("d2"));
    await post(app, "/validate", podReview("boom"));
    await post(app, "/validate", { nope: true });
    const response = await app.inject({ method: "GET", url: "/metrics" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/plain/);
    const text = response.body;
    expect(text).toContain('nadguard_admission_duration_seconds_count{endpoint="mutate",outcome="allowed"} 1');
    expect(text).toContain('nadguard_admission_duration_seconds_count{endpoint="validate",outcome="denied"} 2');
    expect(text).toContain('nadguard_admission_duration_seconds_bucket{le="0.00025",endpoint="mutate",outcome="allowed"}');
    expect(text).toContain('nadguard_admission_denials_total{reason="NetworkNotAllowed"} 2');
    expect(text).toContain('nadguard_admission_denials_total{reason="InternalError"} 1');
    expect(text).toContain('nadguard_admission_requests_total{endpoint="validate",outcome="malformed"} 1');
    expect(text).toContain("process_cpu_user_seconds_total");
  });

  it("counts a denial without a reason as unknown, into the registry it is given", async () => {
    const registry = new Registry();
    const app = await build({ registry, validate: (request) => ({ uid: request.uid, allowed: false }) });
    await post(app, "/validate", podReview("x"));
    expect(await registry.metrics()).toContain('nadguard_admission_denials_total{reason="unknown"} 1');
  });

  it("lets two apps live in one process with their own counts", async () => {
    const first = await build();
    const second = await build();
    await post(first, "/mutate", podReview("one"));
    const scrape = async (app: WebhookApp) => (await app.inject({ method: "GET", url: "/metrics" })).body;
    expect(await scrape(first)).toContain('nadguard_admission_requests_total{endpoint="mutate",outcome="allowed"} 1');
    expect(await scrape(second)).not.toContain('nadguard_admission_requests_total{endpoint="mutate"');
  });
});
