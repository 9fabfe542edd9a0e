// Hostile bodies through the review routes (app.inject): each limit refuses what breaks it with a
// message naming the limit and where, as a denial echoing the uid when the body claims to be a
// review, as a 4xx otherwise; the handler never sees what was refused.
import { afterEach, describe, expect, it } from "vitest";
import type { AdmissionRequest, AdmissionResponse, AdmissionStatus } from "../src/api/admission-review.js";
import { hostileBody } from "../test/support/hostile-reviews.js";
import type { RequestErrorBody } from "./admission-routes.js";
import { Lane } from "./body-parser.js";
import type { WebhookApp, WebhookOptions } from "./contract.js";
import { MAX_ANNOTATIONS_BYTES } from "./limits.js";
import { buildWebhook } from "./server.js";
import { baseOptions, podReview } from "../test/support/webhook.js";

const apps: WebhookApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** An app whose handlers record what reached them. */
async function build(overrides: Partial<WebhookOptions> = {}): Promise<{ app: WebhookApp; seen: AdmissionRequest[] }> {
  const seen: AdmissionRequest[] = [];
  const record = (request: AdmissionRequest): AdmissionResponse => {
    seen.push(request);
    return { uid: request.uid, allowed: true };
  };
  const app = await buildWebhook(baseOptions({ mutate: record, validate: record, ...overrides }));
  apps.push(app);
  return { app, seen };
}

type Body = { apiVersion: string; kind: string; response: AdmissionResponse & { status: AdmissionStatus } } & RequestErrorBody;

async function post(app: WebhookApp, payload: string | Buffer | object, url = "/mutate") {
  const response = await app.inject({ method: "POST", url, headers: { "content-type": "application/json" }, payload: payload as string });
  return { status: response.statusCode, body: response.json<Body>(), bytes: response.rawPayload.length };
}

const MiB = 1024 * 1024;

describe("limits on what a review body may hold", () => {
  it.each([
    ["deep-arrays", "the body nests objects and arrays deeper than 100 levels (at request.object.spec.containers[0].env[0][0]"],
    ["deep-objects", "the body nests objects and arrays deeper than 100 levels (at request.object.spec.containers[0].env.a.a."],
    ["long-string", "the body has a string longer than 3,145,728 bytes (at request.object.spec.containers[0].env[0].value)"],
    ["dense-objects", "the body has more than 200,000 values (members of objects and elements of arrays, all together) (at request.object.spec.containers[0].env[3][49962])"],
    ["dense-numbers", "the body has more than 200,000 values (members of objects and elements of arrays, all together) (at request.object.spec.containers[0].env[3][49962])"],
    ["wide-array", "the body has an array with more than 100,000 elements (at request.object.spec.containers[0].env[99999])"],
    ["wide-object", "the body has an object with more than 100,000 members (at request.object.spec.containers[0].env.k99999)"],
  ] as const)("denies a review with %s, echoing its uid and naming the limit", async (shape, message) => {
    const { app, seen } = await build();
    const hostile = hostileBody(shape, 3.5 * MiB, `uid-${shape}`);
    const { status, body } = await post(app, hostile.body);
    expect(status).toBe(200);
    expect(body.apiVersion).toBe("admission.k8s.io/v1");
    expect(body.kind).toBe("AdmissionReview");
    expect(body.response.uid).toBe(`uid-${shape}`);
    expect(body.response.allowed).toBe(false);
    expect(body.response.status).toMatchObject({ code: 400, reason: "BadRequest" });
    expect(body.response.status.message).toContain(`nadguard refused the review: ${message}`);
    expect(seen).toEqual([]);
  });

  it("counts objects and arrays against their own limit once the values' limit is raised (maxBodyValues)", async () => {
    const { app, seen } = await build({ maxBodyValues: 2_000_000 });
    const { body } = await post(app, hostileBody("dense-objects", 3.5 * MiB, "uid-dense").body);
    expect(body.response).toMatchObject({ uid: "uid-dense", allowed: false, auditAnnotations: { "nadguard.io/reason": "too-many-containers" } });
    expect(body.response.status.message).toBe("nadguard refused the review: the body has more than 1,000,000 objects and arrays (at request.object.spec.containers[0].env[19][49967])");
    expect(seen).toEqual([]);
  });

  it("answers 400 naming the limit when no uid can be read before it", async () => {
    const { app } = await build();
    const { status, body } = await post(app, `{"request":${"[".repeat(200)}${"]".repeat(200)}}`);
    expect(status).toBe(400);
    expect(body.code).toBe("review.too-deep");
    expect(body.message).toMatch(/^the body nests objects and arrays deeper than 100 levels \(at request(\[0\])+…\)$/);
  });

  it("accepts a review nested exactly as deep as the limit and a string exactly as long", async () => {
    const { app, seen } = await build();
    // The review's own levels (top, request, object, spec, containers, container) plus 94 arrays = 100.
    const deep = hostileBody("deep-arrays", 0, "uid-at-limit").body.toString().replace(/\[+\]+/, `${"[".repeat(94)}${"]".repeat(94)}`);
    expect((await post(app, deep)).body.response).toEqual({ uid: "uid-at-limit", allowed: true });
    const long = JSON.stringify(podReview("uid-long", { object: { metadata: { name: "x".repeat(3 * MiB) } } }));
    expect((await post(app, long)).body.response).toEqual({ uid: "uid-long", allowed: true });
    expect(seen.map((request) => request.uid)).toEqual(["uid-at-limit", "uid-long"]);
  });

  it("denies a pod whose annotations exceed Kubernetes' 256 KiB before any decision reads them", async () => {
    const { app, seen } = await build();
    const annotated = (bytes: number) => podReview("uid-annotations", { object: { metadata: { name: "web", annotations: { "k8s.v1.cni.cncf.io/networks": "a", "example.com/blob": "x".repeat(bytes) } } } });
    const exactly = MAX_ANNOTATIONS_BYTES - "k8s.v1.cni.cncf.io/networks".length - 1 - "example.com/blob".length;
    expect((await post(app, annotated(exactly))).body.response).toEqual({ uid: "uid-annotations", allowed: true });
    const { status, body } = await post(app, annotated(exactly + 1));
    expect(status).toBe(200);
    expect(body.response).toEqual({
      uid: "uid-annotations",
      allowed: false,
      status: {
        code: 422,
        reason: "Invalid",
        message: "nadguard refused the review: metadata.annotations: Too long: must have at most 262144 bytes (Kubernetes' limit for an object's annotations)",
      },
      auditAnnotations: { "nadguard.io/reason": "annotations-too-long" },
    });
    expect(seen).toHaveLength(1);
  });

  it("reports a huge or mistyped userInfo.groups as one problem, in a small answer", async () => {
    const { app } = await build();
    const huge = await post(app, hostileBody("wrong-groups", 64 * 1024).body);
    expect(huge.status).toBe(400);
    expect(huge.body.message).toBe("the body is not an AdmissionReview admission.k8s.io/v1: request.userInfo.groups: Too big: expected array to have <=10000 items");
    const groups = ["ok", ...Array.from({ length: 5000 }, () => 7)] as unknown as string[];
    const mistyped = await post(app, JSON.stringify(podReview("u", { userInfo: { username: "x", groups } })));
    expect(mistyped.body.problems).toEqual([{ code: "review.schema", path: "request.userInfo.groups[1]", message: "Invalid input: expected string, received number" }]);
  });

  it("lists at most 20 problems and counts the rest", async () => {
    const { app } = await build();
    const extra = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`key-${i}`, [i]])) as unknown as Record<string, string[]>;
    const { status, body, bytes } = await post(app, JSON.stringify(podReview("u", { userInfo: { username: "x", extra } })));
    expect(status).toBe(400);
    expect(body.problems).toHaveLength(20);
    expect(body.problems[19]!.path).toBe("request.userInfo.extra.key-19[0]");
    expect(body.message).toMatch(/request\.userInfo\.extra\.key-19\[0\]: Invalid input: expected string, received number; and 80 more$/);
    expect(bytes).toBeLessThan(8192);
  });

  it.each([
    ["request.uid", { uid: "u".repeat(129) }, "Too big: expected string to have <=128 characters"],
    ["request.name", { name: "n".repeat(254) }, "Too big: expected string to have <=253 characters"],
    ["request.userInfo.username", { userInfo: { username: "u".repeat(4097) } }, "Too big: expected string to have <=4096 characters"],
  ] as const)("refuses an envelope whose %s is longer than any Kubernetes gives", async (path, request, message) => {
    const { app } = await build();
    const { status, body } = await post(app, JSON.stringify(podReview("u", request as Partial<AdmissionRequest>)));
    expect(status).toBe(400);
    expect(body.problems).toContainEqual({ code: "review.schema", path, message });
  });

  it("refuses a __proto__ key as fastify's own parser does", async () => {
    const { app, seen } = await build();
    const { status, body } = await post(app, JSON.stringify(podReview("u")).replace('"metadata":{', '"metadata":{"__proto__":{"x":1},'));
    expect(status).toBe(400);
    expect(body).toMatchObject({ code: "review.invalid-json", message: "the body has a __proto__ key (at request.object.metadata.__proto__)" });
    expect(seen).toEqual([]);
  });

  it("counts refused reviews as denials under the limit's name", async () => {
    const { app } = await build();
    await post(app, hostileBody("deep-arrays", 4096, "m1").body);
    await post(app, hostileBody("deep-objects", 4096, "m2").body, "/validate");
    const text = (await app.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toContain('nadguard_admission_denials_total{reason="too-deep"} 2');
    expect(text).toContain('nadguard_admission_requests_total{endpoint="validate",outcome="denied"} 1');
  });
});

describe("Lane", () => {
  it("lets one task in at a time, in order of arrival, and a waiter give up at its deadline", async () => {
    const lane = new Lane();
    const far = performance.now() + 60_000;
    expect(await lane.enter(far)).toBe(true);
    const order: string[] = [];
    const second = lane.enter(far).then((turn) => order.push(`second ${turn}`));
    const late = lane.enter(performance.now() - 1).then((turn) => order.push(`late ${turn}`));
    const third = lane.enter(far).then((turn) => order.push(`third ${turn}`));
    await late;
    expect(order).toEqual(["late false"]);
    lane.leave();
    await second;
    lane.leave();
    await third;
    expect(order).toEqual(["late false", "second true", "third true"]);
    lane.leave();
    expect(await lane.enter(far)).toBe(true);
  });
});
