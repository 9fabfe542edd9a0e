// Self-test of the fake API server's wire format (plain HTTP, no client-node), so that the suites
// built on it test nadguard against what kube-apiserver really sends. Fake-only by nature.
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type FakeApiServer, startFakeApiServer } from "./fake-apiserver.js";

interface RawWatch {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  events: { type: string; object: { kind?: string; code?: number; metadata?: { name?: string; resourceVersion?: string } } }[];
  ended: Promise<"end" | "error">;
  close(): void;
}

let fake: FakeApiServer;
afterEach(async () => {
  await fake?.close();
});

async function call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const req = request(`${fake.url}${path}`, { method, headers: { "Content-Type": "application/json", ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || "{}") as T }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function openWatch(path: string): Promise<RawWatch> {
  return new Promise((resolve, reject) => {
    const req = request(`${fake.url}${path}`, (res) => {
      const watch: RawWatch = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events: [],
        ended: new Promise((done) => {
          res.on("end", () => done("end"));
          res.on("error", () => done("error"));
          res.on("aborted", () => done("error"));
        }),
        close: () => req.destroy(),
      };
      let buffer = "";
      res.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          watch.events.push(JSON.parse(buffer.slice(0, newline)) as RawWatch["events"][number]);
          buffer = buffer.slice(newline + 1);
        }
      });
      resolve(watch);
    });
    req.on("error", reject);
    req.end();
  });
}

async function until(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const NADS = "/apis/k8s.cni.cncf.io/v1/namespaces/n/network-attachment-definitions";
const nadBody = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition", metadata: { name, labels }, spec: { config: "{}" } });

describe("fake API server: list", () => {
  it("answers XList with metadata.resourceVersion; core items carry no kind, custom resources do", async () => {
    fake = await startFakeApiServer();
    await call("POST", "/api/v1/namespaces", { metadata: { name: "n" } });
    await call("POST", NADS, nadBody("b"));
    await call("POST", NADS, nadBody("a"));
    const nads = await call<{ kind: string; metadata: { resourceVersion: string }; items: { kind?: string; metadata: { name: string } }[] }>("GET", NADS);
    expect(nads.body.kind).toBe("NetworkAttachmentDefinitionList");
    expect(nads.body.metadata.resourceVersion).toBe(String(fake.resourceVersion()));
    expect(nads.body.items.map((i) => [i.metadata.name, i.kind])).toEqual([["a", "NetworkAttachmentDefinition"], ["b", "NetworkAttachmentDefinition"]]);
    const namespaces = await call<{ items: { kind?: string; metadata: { labels: Record<string, string> } }[] }>("GET", "/api/v1/namespaces");
    expect(namespaces.body.items[0]!.kind).toBeUndefined();
    expect(namespaces.body.items[0]!.metadata.labels).toEqual({ "kubernetes.io/metadata.name": "n" });
  });

  it("pages with limit/continue at the first page's resourceVersion; a continue token older than a compaction is 410 Expired", async () => {
    fake = await startFakeApiServer();
    for (const name of ["a", "b", "c"]) await call("POST", NADS, nadBody(name));
    const first = await call<{ metadata: { resourceVersion: string; continue: string }; items: unknown[] }>("GET", `${NADS}?limit=2`);
    expect(first.body.items).toHaveLength(2);
    await call("POST", NADS, nadBody("d"));
    const second = await call<{ metadata: { resourceVersion: string; continue?: string }; items: { metadata: { name: string } }[] }>(
      "GET",
      `${NADS}?limit=2&continue=${first.body.metadata.continue}`,
    );
    expect(second.body.items.map((i) => i.metadata.name)).toEqual(["c"]);
    expect(second.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
    expect(second.body.metadata.continue).toBeUndefined();
    fake.compact();
    const expired = await call<{ code: number; reason: string }>("GET", `${NADS}?limit=2&continue=${first.body.metadata.continue}`);
    expect([expired.status, expired.body.code, expired.body.reason]).toEqual([410, 410, "Expired"]);
  });

  it("refuses an exact list at a compacted resourceVersion with HTTP 410", async () => {
    fake = await startFakeApiServer();
    const gone = await call<{ kind: string; code: number }>("GET", `${NADS}?resourceVersion=1&resourceVersionMatch=Exact`);
    expect([gone.status, gone.body.kind, gone.body.code]).toEqual([410, "Status", 410]);
  });
});

describe("fake API server: watch", () => {
  it("streams chunked application/json events after the given resourceVersion", async () => {
    fake = await startFakeApiServer();
    await call("POST", NADS, nadBody("before"));
    const rv = fake.resourceVersion();
    await call("POST", NADS, nadBody("missed-by-list"));
    const watch = await openWatch(`${NADS}?watch=true&resourceVersion=${rv}`);
    expect(watch.status).toBe(200);
    expect(watch.headers["content-type"]).toBe("application/json");
    expect(watch.headers["transfer-encoding"]).toBe("chunked");
    await call("PUT", `${NADS}/before`, nadBody("before", { changed: "yes" }));
    await call("DELETE", `${NADS}/missed-by-list`);
    await until(() => watch.events.length === 3);
    expect(watch.events.map((e) => [e.type, e.object.metadata?.name])).toEqual([
      ["ADDED", "missed-by-list"],
      ["MODIFIED", "before"],
      ["DELETED", "missed-by-list"],
    ]);
    expect(watch.events.every((e) => e.object.kind === "NetworkAttachmentDefinition")).toBe(true);
    const rvs = watch.events.map((e) => Number(e.object.metadata?.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
    watch.close();
  });

  it("without a resourceVersion sends every object as ADDED first", async () => {
    fake = await startFakeApiServer();
    await call("POST", NADS, nadBody("x"));
    const watch = await openWatch(`${NADS}?watch=1`);
    await until(() => watch.events.length === 1);
    expect(watch.events[0]!.type).toBe("ADDED");
    watch.close();
  });

  it("refuses a compacted resourceVersion with an ERROR event carrying Status 410, then ends", async () => {
    fake = await startFakeApiServer();
    const watch = await openWatch(`${NADS}?watch=true&resourceVersion=5`);
    expect(watch.status).toBe(200);
    expect(await watch.ended).toBe("end");
    expect(watch.events).toEqual([
      { type: "ERROR", object: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "too old resource version: 5 (1000)", reason: "Expired", code: 410 } },
    ]);
  });

  it("or with HTTP 410 when configured so", async () => {
    fake = await startFakeApiServer({ expiredWatch: "http" });
    const gone = await call<{ code: number }>("GET", `${NADS}?watch=true&resourceVersion=5`);
    expect([gone.status, gone.body.code]).toEqual([410, 410]);
  });

  it("sends DELETED when an object stops matching the selector and ADDED when it matches again", async () => {
    fake = await startFakeApiServer();
    await call("POST", NADS, nadBody("a", { app: "x" }));
    const watch = await openWatch(`${NADS}?watch=true&resourceVersion=${fake.resourceVersion()}&labelSelector=app%3Dx`);
    await call("PUT", `${NADS}/a`, nadBody("a", { app: "y" }));
    await call("PUT", `${NADS}/a`, nadBody("a", { app: "x" }));
    await call("POST", NADS, nadBody("other", { app: "y" }));
    await until(() => watch.events.length === 2);
    expect(watch.events.map((e) => e.type)).toEqual(["DELETED", "ADDED"]);
    watch.close();
  });

  it("filters pods by fieldSelector spec.nodeName", async () => {
    fake = await startFakeApiServer();
    const pods = "/api/v1/namespaces/n/pods";
    const watch = await openWatch(`/api/v1/pods?watch=true&resourceVersion=${fake.resourceVersion()}&fieldSelector=spec.nodeName%3Dnode-a`);
    await call("POST", pods, { metadata: { name: "on-b" }, spec: { nodeName: "node-b", containers: [] } });
    await call("POST", pods, { metadata: { name: "on-a" }, spec: { nodeName: "node-a", containers: [] } });
    await until(() => watch.events.length === 1);
    expect(watch.events[0]!.object.metadata?.name).toBe("on-a");
    watch.close();
  });

  it("sends bookmarks when allowed, one 2 s before timeoutSeconds, then ends the stream", async () => {
    fake = await startFakeApiServer({ bookmarkIntervalMs: 60_000 });
    const started = Date.now();
    const watch = await openWatch(`${NADS}?watch=true&resourceVersion=${fake.resourceVersion()}&allowWatchBookmarks=true&timeoutSeconds=3`);
    expect(await watch.ended).toBe("end");
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
    expect(watch.events).toEqual([{ type: "BOOKMARK", object: { kind: "NetworkAttachmentDefinition", apiVersion: "k8s.cni.cncf.io/v1", metadata: { resourceVersion: String(fake.resourceVersion()) } } }]);
  });

  it("sends periodic bookmarks only to watches that allow them", async () => {
    fake = await startFakeApiServer({ bookmarkIntervalMs: 30 });
    const allowed = await openWatch(`${NADS}?watch=true&resourceVersion=${fake.resourceVersion()}&allowWatchBookmarks=true`);
    const plain = await openWatch(`${NADS}?watch=true&resourceVersion=${fake.resourceVersion()}`);
    await until(() => allowed.events.length >= 2);
    expect(plain.events).toEqual([]);
    allowed.close();
    plain.close();
  });

  it("drops open watches mid-stream", async () => {
    fake = await startFakeApiServer();
    const watch = await openWatch(`${NADS}?watch=true`);
    await until(() => fake.watchCount() === 1);
    expect(fake.dropWatches()).toBe(1);
    expect(await watch.ended).toBe("error");
  });

  it("deleting a namespace deletes its objects, with their DELETED events", async () => {
    fake = await startFakeApiServer();
    await call("POST", "/api/v1/namespaces", { metadata: { name: "n" } });
    await call("POST", NADS, nadBody("a"));
    const watch = await openWatch(`/apis/k8s.cni.cncf.io/v1/network-attachment-definitions?watch=true&resourceVersion=${fake.resourceVersion()}`);
    await call("DELETE", "/api/v1/namespaces/n");
    await until(() => watch.events.length === 1);
    expect(watch.events[0]!.type).toBe("DELETED");
    watch.close();
  });
});

describe("fake API server: writes, auth, SubjectAccessReview", () => {
  it("rejects a replace with a stale resourceVersion (409) and a duplicate create (409)", async () => {
    fake = await startFakeApiServer();
    const created = await call<{ metadata: { resourceVersion: string; uid: string } }>("POST", NADS, nadBody("a"));
    expect(created.status).toBe(201);
    expect((await call("POST", NADS, nadBody("a"))).status).toBe(409);
    await call("PUT", `${NADS}/a`, nadBody("a", { v: "2" }));
    const stale = await call("PUT", `${NADS}/a`, { ...nadBody("a"), metadata: { name: "a", resourceVersion: created.body.metadata.resourceVersion } });
    expect(stale.status).toBe(409);
    const current = await call<{ metadata: { uid: string } }>("GET", `${NADS}/a`);
    expect(current.body.metadata.uid).toBe(created.body.metadata.uid);
  });

  it("requires the bearer token when given one", async () => {
    fake = await startFakeApiServer({ token: "s3cret" });
    expect((await call("GET", NADS)).status).toBe(401);
    expect((await call("GET", NADS, undefined, { Authorization: "Bearer s3cret" })).status).toBe(200);
  });

  it("answers SubjectAccessReviews from the stored RBAC objects, and fails them on request", async () => {
    fake = await startFakeApiServer();
    await call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/n/roles", {
      metadata: { name: "use" },
      rules: [{ apiGroups: ["k8s.cni.cncf.io"], resources: ["network-attachment-definitions"], verbs: ["use"] }],
    });
    await call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/n/rolebindings", {
      metadata: { name: "alice" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "use" },
      subjects: [{ kind: "User", name: "alice" }],
    });
    const sar = (user: string, groups: string[] = []) =>
      call<{ kind: string; status: { allowed: boolean; reason?: string } }>("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: { user, groups, resourceAttributes: { verb: "use", group: "k8s.cni.cncf.io", resource: "network-attachment-definitions", name: "x", namespace: "n" } },
      });
    const alice = await sar("alice");
    expect([alice.status, alice.body.kind, alice.body.status]).toEqual([201, "SubjectAccessReview", { allowed: true, reason: "RBAC: allowed by RoleBinding n/alice → Role n/use" }]);
    expect((await sar("bob")).body.status).toEqual({ allowed: false });
    expect((await sar("root", ["system:masters"])).body.status.allowed).toBe(true);
    fake.failSubjectAccessReviews(1, 503);
    expect((await sar("alice")).status).toBe(503);
    expect((await sar("alice")).status).toBe(201);
  });
});
