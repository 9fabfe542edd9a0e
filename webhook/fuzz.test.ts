// Fuzzing the real webhook: `startWebhook` over TLS with the development certificates and the
// handlers of `nadguard webhook` on the example cluster, fed generated reviews (pods, NADs,
// MultiNetworkPolicies, other kinds; every operation), the same reviews mutated (bytes flipped,
// cut short, a subtree replaced, deep nesting or a long string spliced in) and the hostile bodies of
// the soak benchmark, over HTTP/1.1 and HTTP/2. Seeded (FUZZ_SEED replays another run). Each answer
// must keep the invariants kube-apiserver relies on:
//   - never a 5xx;
//   - a 200 is always an AdmissionReview v1 with a response, and it echoes the request's uid;
//   - a review the schema accepts and the limits allow always gets that 200;
//   - anything else gets a JSON 4xx naming what is wrong (or 413 for a body over 7 MiB);
//   - no answer takes longer than the review's timeout.
import { readFile, readdir, mkdtemp, rm } from "node:fs/promises";
import * as http2 from "node:http2";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDevCertificates } from "../certs/dev-certificates.js";
import { review } from "../src/admission/review.js";
import { AdmissionReviewRequest } from "../src/api/admission-review.js";
import { loadEnv } from "../src/cli/env.js";
import { HOSTILE_SHAPES, type HostileShape, hostileBody } from "../test/support/hostile-reviews.js";
import { BODY_LIMIT, MAX_ANNOTATIONS_BYTES, REVIEW_BODY_LIMITS } from "./limits.js";
import { type RunningWebhook, startWebhook } from "./start.js";

const SEED = Number(process.env.FUZZ_SEED ?? 15);
const EXAMPLES = join(import.meta.dirname, "..", "examples");
const MiB = 1024 * 1024;

let dir: string;
let ca: string;
let server: RunningWebhook;
let h2: http2.ClientHttp2Session | undefined;
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
let exampleObjects: Record<string, unknown>[] = [];
const stats = { requests: 0, slowestMs: 0, byStatus: new Map<string, number>() };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-fuzz-"));
  const certs = await ensureDevCertificates(dir, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  ca = certs.caBundle;
  const env = await loadEnv(join(EXAMPLES, "cluster"), undefined, () => undefined);
  server = await startWebhook({
    host: "127.0.0.1",
    port: 0,
    tls: { certFile: certs.certFile, keyFile: certs.keyFile },
    logger: false,
    isReady: () => true,
    mutate: (request) => review(request, env, "mutate"),
    validate: (request) => review(request, env, "validate"),
  });
  for (const file of await readdir(join(EXAMPLES, "cluster"))) {
    for (const doc of parseAllDocuments(await readFile(join(EXAMPLES, "cluster", file), "utf8"))) exampleObjects.push(doc.toJS() as Record<string, unknown>);
  }
  exampleObjects = exampleObjects.filter((o) => o && (o.kind === "NetworkAttachmentDefinition" || o.kind === "MultiNetworkPolicy" || o.kind === "Pod"));
}, 60_000);

afterAll(async () => {
  h2?.close();
  agent.destroy();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
  const summary = [...stats.byStatus].sort().map(([k, n]) => `${k} ×${n}`).join(", ");
  process.stdout.write(`webhook fuzz (seed ${SEED}): ${stats.requests} requests, slowest answer ${Math.round(stats.slowestMs)} ms: ${summary}\n`);
});

interface Answer {
  status: number;
  text: string;
  ms: number;
}

function postHttp1(path: string, body: Buffer, contentType: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = https.request(
      { host: "127.0.0.1", port: server.port, path, method: "POST", ca, agent, headers: { "content-type": contentType, "content-length": body.length } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - started }));
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

function session(): http2.ClientHttp2Session {
  if (!h2 || h2.closed || h2.destroyed) {
    h2 = http2.connect(`https://127.0.0.1:${server.port}`, { ca });
    h2.on("error", () => undefined);
  }
  return h2;
}

function postHttp2(path: string, body: Buffer, contentType: string): Promise<Answer> {
  const started = performance.now();
  // The server answers 413 at once and ignores the rest of an oversized body; the DATA frames that
  // follow count as invalid frames against the session (Node closes it after 1,000): its own session.
  const oversized = body.length > BODY_LIMIT ? http2.connect(`https://127.0.0.1:${server.port}`, { ca }) : undefined;
  oversized?.on("error", () => undefined);
  return new Promise<Answer>((resolve, reject) => {
    const stream = (oversized ?? session()).request({ ":method": "POST", ":path": path, "content-type": contentType, "content-length": String(body.length) });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status, text: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - started }));
    stream.on("error", reject);
    stream.end(body);
  }).finally(() => oversized?.destroy());
}

// ---- what a request is, and what its answer must be ----

interface Case {
  body: Buffer;
  contentType: string;
  protocol: "h1" | "h2";
  endpoint: "/mutate" | "/validate";
  timeout: string | undefined;
  /**
   * The uid written at the start of the body, before any mutation or hostile part: what the server
   * reads when the body breaks a limit after it, even where the rest is not JSON.
   */
  knownUid?: string;
}

function timeoutMs(timeout: string | undefined): number {
  const match = timeout === undefined ? undefined : /^(\d+)s$/.exec(timeout);
  return match ? Math.min(Number(match[1]) * 1000, 30_000) : 10_000;
}

/** Depth, longest string (as written, escapes included), objects and arrays, members, values, as the limits count them. */
function withinLimits(value: unknown): boolean {
  let containers = 0;
  /** Members and elements of the whole value (maxValues). */
  let total = 0;
  const tooLong = (text: string): boolean => text.length > REVIEW_BODY_LIMITS.maxStringBytes / 6 && Buffer.byteLength(JSON.stringify(text)) - 2 > REVIEW_BODY_LIMITS.maxStringBytes;
  const values: unknown[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const item = values.pop();
    const depth = depths.pop()!;
    if (typeof item === "string" && tooLong(item)) return false;
    if (typeof item !== "object" || item === null) continue;
    if (depth > REVIEW_BODY_LIMITS.maxDepth || ++containers > REVIEW_BODY_LIMITS.maxContainers) return false;
    if (Array.isArray(item)) {
      if (item.length > REVIEW_BODY_LIMITS.maxMembers || (total += item.length) > REVIEW_BODY_LIMITS.maxValues) return false;
      for (let i = 0; i < item.length; i++) {
        const child: unknown = item[i];
        if (typeof child === "object" || typeof child === "string") {
          values.push(child);
          depths.push(depth + 1);
        }
      }
      continue;
    }
    let inObject = 0;
    for (const key in item) {
      if (tooLong(key) || ++inObject > REVIEW_BODY_LIMITS.maxMembers || ++total > REVIEW_BODY_LIMITS.maxValues) return false;
      values.push((item as Record<string, unknown>)[key]);
      depths.push(depth + 1);
    }
  }
  return true;
}

function annotationBytes(review: { request: { object?: unknown } }): number {
  const annotations = (review.request.object as { metadata?: { annotations?: unknown } } | null | undefined)?.metadata?.annotations;
  if (typeof annotations !== "object" || annotations === null) return 0;
  let total = 0;
  for (const [key, value] of Object.entries(annotations)) total += Buffer.byteLength(key) + (typeof value === "string" ? Buffer.byteLength(value) : 0);
  return total;
}

function tryParse(text: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text.toString("utf8")) };
  } catch {
    return { ok: false };
  }
}

function readableUid(value: unknown): string | undefined {
  const review = value as { apiVersion?: unknown; kind?: unknown; request?: { uid?: unknown } } | null;
  if (typeof review !== "object" || review === null || review.apiVersion !== "admission.k8s.io/v1" || review.kind !== "AdmissionReview") return undefined;
  const uid = review.request?.uid;
  return typeof uid === "string" && uid.length > 0 && uid.length <= 128 ? uid : undefined;
}

async function check(c: Case): Promise<void> {
  const path = c.timeout === undefined ? c.endpoint : `${c.endpoint}?timeout=${c.timeout}`;
  const answer = await (c.protocol === "h1" ? postHttp1 : postHttp2)(path, c.body, c.contentType);
  stats.requests++;
  stats.slowestMs = Math.max(stats.slowestMs, answer.ms);
  const parsed = tryParse(c.body);
  // JSON.parse's reading where it can read the body (the last of duplicated keys, as Go's decoder).
  const uid = parsed.ok ? readableUid(parsed.value) : c.knownUid;
  const json = c.contentType.startsWith("application/json");
  const valid = json && c.body.length <= BODY_LIMIT && parsed.ok && AdmissionReviewRequest.safeParse(parsed.value).success && withinLimits(parsed.value);
  let answerBody: unknown;
  try {
    answerBody = JSON.parse(answer.text);
  } catch {
    answerBody = undefined;
  }
  const isReview = (answerBody as { apiVersion?: unknown } | undefined)?.apiVersion === "admission.k8s.io/v1";
  stats.byStatus.set(`${answer.status}${isReview ? " review" : ""}`, (stats.byStatus.get(`${answer.status}${isReview ? " review" : ""}`) ?? 0) + 1);
  const context = `${c.protocol} ${path} ${c.contentType} ${c.body.length} bytes: ${c.body.subarray(0, 160).toString("utf8")}… -> ${answer.status} ${answer.text.slice(0, 300)}`;

  expect(answer.status, context).toBeLessThan(500);
  expect(answer.ms, `${context} (answered after ${Math.round(answer.ms)} ms)`).toBeLessThan(timeoutMs(c.timeout));
  if (answer.status === 200) {
    const response = (answerBody as { kind?: unknown; response?: { uid?: unknown; allowed?: unknown } }).response;
    expect(isReview && (answerBody as { kind?: unknown }).kind === "AdmissionReview", context).toBe(true);
    expect(typeof response?.allowed, context).toBe("boolean");
    expect(uid, `${context}: an AdmissionReview answer to a body without a readable uid`).toBeDefined();
    expect(response?.uid, context).toBe(uid);
    if (!parsed.ok) expect(answer.text, `${context}: only a refusal answers a body that is not JSON`).toContain("nadguard refused the review");
  } else {
    expect(answerBody, context).toMatchObject({ code: expect.stringMatching(/^review\./), message: expect.any(String) });
  }
  if (valid) {
    expect(answer.status, `${context}: a valid review`).toBe(200);
    if (annotationBytes(parsed.value as { request: { object?: unknown } }) > MAX_ANNOTATIONS_BYTES) {
      expect((answerBody as { response: { allowed: boolean } }).response.allowed, context).toBe(false);
    }
  }
  if (c.body.length > BODY_LIMIT) expect(answer.status, context).toBe(413);
}

// ---- generated reviews ----

const NETWORKS = ["macvlan-data", "bridge-lan", "ipvlan-storage", "sriov-fast", "shared-networks/sriov-shared", "shared-networks/bridge-shared", "tenant-b/ipvlan-storage", "tenant-a/macvlan-data@net5", "missing"];
const NAMESPACES = ["tenant-a", "tenant-b", "shared-networks", "default", "nowhere"];
const USERS = ["alice", "bob", "system:serviceaccount:tenant-a:default", "system:serviceaccount:kube-system:replicaset-controller", "mallory"];
const GROUPS = ["team-alpha", "team-beta", "system:authenticated", "system:serviceaccounts", "system:masters"];

const networksAnnotation = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom(...NETWORKS), fc.constantFrom("", "@net1", "@fast0", "@x".repeat(10))), { maxLength: 4 }).map((items) => items.map(([name, ifname]) => name + ifname).join(", ")),
  fc.array(fc.record({ name: fc.constantFrom(...NETWORKS.map((n) => n.split("/").pop()!)), namespace: fc.constantFrom(...NAMESPACES), interface: fc.constantFrom("net1", "eth9") }, { requiredKeys: ["name"] }), { maxLength: 3 }).map((list) => JSON.stringify(list)),
  fc.string({ maxLength: 60 }),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
);

const pod = fc
  .record({
    name: fc.oneof(fc.constantFrom("web", "db"), fc.string({ maxLength: 20 })),
    namespace: fc.constantFrom(...NAMESPACES),
    networks: fc.option(networksAnnotation, { nil: undefined }),
    defaultNetwork: fc.option(fc.constantFrom(...NETWORKS), { nil: undefined, freq: 5 }),
    labels: fc.dictionary(fc.constantFrom("app", "tier", "x"), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    containers: fc.array(
      fc.record({ name: fc.string({ maxLength: 10 }), image: fc.constant("registry.example/app:1"), resources: fc.option(fc.record({ limits: fc.dictionary(fc.constantFrom("cpu", "example.com/sriov"), fc.constantFrom("1", "2", 3)) }), { nil: undefined }) }, { requiredKeys: ["name", "image"] }),
      { maxLength: 3 },
    ),
    extra: fc.dictionary(fc.constantFrom("hostNetwork", "serviceAccountName", "volumes", "nodeSelector", "junk"), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 2 }),
  })
  .map(({ name, namespace, networks, defaultNetwork, labels, containers, extra }) => {
    const annotations: Record<string, string> = {};
    if (networks !== undefined) annotations["k8s.v1.cni.cncf.io/networks"] = networks;
    if (defaultNetwork !== undefined) annotations["v1.multus-cni.io/default-network"] = defaultNetwork;
    return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace, labels, annotations }, spec: { containers, ...extra } } as Record<string, unknown>;
  });

const object = fc.oneof({ weight: 6, arbitrary: pod }, { weight: 2, arbitrary: fc.constant(null).map(() => exampleObjects) .chain((list) => fc.constantFrom(...list)) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) });

const KINDS: Record<string, { group: string; version: string; resource: string }> = {
  Pod: { group: "", version: "v1", resource: "pods" },
  NetworkAttachmentDefinition: { group: "k8s.cni.cncf.io", version: "v1", resource: "network-attachment-definitions" },
  MultiNetworkPolicy: { group: "k8s.cni.cncf.io", version: "v1beta1", resource: "multi-networkpolicies" },
  ConfigMap: { group: "", version: "v1", resource: "configmaps" },
};

const generatedReview = fc
  .record({
    uid: fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 40 })),
    object,
    oldObject: fc.option(object, { nil: undefined, freq: 3 }),
    kind: fc.option(fc.constantFrom(...Object.keys(KINDS)), { nil: undefined, freq: 4 }),
    operation: fc.constantFrom("CREATE", "CREATE", "UPDATE", "DELETE", "CONNECT"),
    username: fc.constantFrom(...USERS),
    groups: fc.subarray(GROUPS),
    subResource: fc.option(fc.constantFrom("status", "binding"), { nil: undefined, freq: 6 }),
    dryRun: fc.boolean(),
  })
  .map((r) => {
    const objectKind = (r.object as { kind?: unknown } | null)?.kind;
    const kind = r.kind ?? (typeof objectKind === "string" && objectKind in KINDS ? objectKind : "Pod");
    const { group, version, resource } = KINDS[kind]!;
    const namespace = ((r.object as { metadata?: { namespace?: unknown } } | null)?.metadata?.namespace as string | undefined) ?? "tenant-a";
    return {
      kind: "AdmissionReview",
      apiVersion: "admission.k8s.io/v1",
      request: {
        uid: r.uid,
        kind: { group, version, kind },
        resource: { group, version, resource },
        ...(r.subResource && { subResource: r.subResource }),
        namespace: typeof namespace === "string" ? namespace : "tenant-a",
        operation: r.operation,
        userInfo: { username: r.username, groups: r.groups },
        object: r.operation === "DELETE" ? null : r.object,
        oldObject: r.operation === "CREATE" ? null : (r.oldObject ?? r.object),
        dryRun: r.dryRun,
      },
    };
  });

// ---- mutations ----

/** Replaces the subtree reached by following `steps` (child picked by index modulo its size). */
function replaceAt(value: unknown, steps: readonly number[], replacement: unknown): unknown {
  if (steps.length === 0 || typeof value !== "object" || value === null) return replacement;
  const entries = Object.entries(value);
  if (entries.length === 0) return replacement;
  const [key, child] = entries[steps[0]! % entries.length]!;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value) ? [...value] : { ...value };
  (copy as Record<string, unknown>)[key] = replaceAt(child, steps.slice(1), replacement);
  return copy;
}

const splice = fc.oneof(
  fc.integer({ min: 90, max: 130 }).map((depth) => `${"[".repeat(depth)}${"]".repeat(depth)}`),
  fc.integer({ min: 90, max: 130 }).map((depth) => `${'{"a":'.repeat(depth)}0${"}".repeat(depth)}`),
  fc.constantFrom(`"${"x".repeat(70_000)}"`, `[${"0,".repeat(20_000)}0]`, `{${Array.from({ length: 3000 }, (_, i) => `"k${i}":${i}`).join(",")}}`, '{"__proto__":{"polluted":1}}'),
);

type Mutation =
  | { kind: "none" }
  | { kind: "bytes"; edits: Array<[number, number]> }
  | { kind: "cut"; at: number }
  | { kind: "splice"; at: number; text: string }
  | { kind: "replace"; steps: number[]; value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 2, arbitrary: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => ({ kind: "bytes" as const, edits })) },
  { weight: 1, arbitrary: fc.nat().map((at) => ({ kind: "cut" as const, at })) },
  { weight: 2, arbitrary: fc.record({ at: fc.nat(), text: splice }).map((s) => ({ kind: "splice" as const, ...s })) },
  { weight: 3, arbitrary: fc.record({ steps: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), value: fc.jsonValue({ maxDepth: 3 }) }).map((r) => ({ kind: "replace" as const, ...r })) },
);

function mutate(review: unknown, m: Mutation): Buffer {
  if (m.kind === "replace") return Buffer.from(JSON.stringify(replaceAt(review, m.steps, m.value)));
  const text = Buffer.from(JSON.stringify(review));
  switch (m.kind) {
    case "none":
      return text;
    case "bytes": {
      const copy = Buffer.from(text);
      for (const [at, byte] of m.edits) copy[at % copy.length] = byte;
      return copy;
    }
    case "cut":
      return text.subarray(0, m.at % text.length);
    case "splice": {
      // At a value's place: right after a ':' or '[' of the review, or anywhere.
      const at = m.at % text.length;
      return Buffer.concat([text.subarray(0, at), Buffer.from(m.text), text.subarray(at)]);
    }
  }
}

const transport = fc.record({
  protocol: fc.constantFrom("h1" as const, "h2" as const),
  endpoint: fc.constantFrom("/mutate" as const, "/validate" as const),
  timeout: fc.constantFrom(undefined, "5s", "5s", "10s", "2s", "banana"),
  contentType: fc.oneof(
    { weight: 12, arbitrary: fc.constant("application/json") },
    { weight: 2, arbitrary: fc.constant("application/json; charset=utf-8") },
    { weight: 1, arbitrary: fc.constantFrom("text/plain", "application/x-yaml") },
  ),
});

describe("the webhook under fuzzed reviews over TLS", () => {
  it("keeps its invariants for generated and mutated reviews", async () => {
    await fc.assert(
      fc.asyncProperty(generatedReview, mutation, transport, async (generated, m, t) => {
        await check({ body: mutate(generated, m), ...t, knownUid: generated.request.uid });
      }),
      { seed: SEED, numRuns: 400, endOnFailure: true },
    );
  }, 120_000);

  const SIZES: Array<[HostileShape, number]> = [
    ...HOSTILE_SHAPES.flatMap((shape): Array<[HostileShape, number]> => [
      [shape, 16 * 1024],
      [shape, MiB],
    ]),
    ["deep-objects", 6.5 * MiB],
    ["long-string", 6.5 * MiB],
    ["long-strings", 6.5 * MiB],
    ["dense-numbers", 6.5 * MiB],
    ["dense-objects", 6.5 * MiB],
  ];
  it.each(SIZES)("keeps its invariants for a %s body of %d bytes, over HTTP/1.1 and HTTP/2", async (shape, size) => {
    const hostile = hostileBody(shape, size, `fuzz-${shape}-${size}`);
    for (const protocol of ["h1", "h2"] as const) {
      await check({ body: hostile.body, contentType: hostile.contentType, protocol, endpoint: "/mutate", timeout: "5s", ...(hostile.uid !== undefined && { knownUid: hostile.uid }) });
    }
  }, 60_000);

  it("still answers a normal review as before, after all of that", async () => {
    const example = await readFile(join(EXAMPLES, "reviews", "pod-tenant-a-allowed.json"));
    for (const post of [postHttp1, postHttp2]) {
      const answer = await post("/mutate?timeout=5s", example, "application/json");
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text)).toMatchObject({ response: { uid: "0b7c3a52-6f1e-4c1a-9d7e-1a2b3c4d5e6f", allowed: true, patchType: "JSONPatch" } });
    }
  });
});
