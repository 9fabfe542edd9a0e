// A kube-apiserver stand-in for the Kubernetes-mode suites: no registry reachable from these
// machines ships kube-apiserver, so this speaks its wire format over HTTP on
// 127.0.0.1, for the resources nadguard reads and the test writes:
// - list: `{kind: XList, apiVersion, metadata: {resourceVersion, continue?}, items}`; limit and
//   continue (a continue token older than the last compaction → 410 Expired); resourceVersion
//   with resourceVersionMatch=Exact older than the compaction → 410 Gone.
// - watch (`?watch=true`): a chunked `application/json` stream of `{"type","object"}` lines.
//   resourceVersion unset or "0": synthetic ADDED for every object, then changes; N: every change
//   after N from the history; N older than the last compaction: an ERROR event carrying a Status
//   with code 410 (what the watch cache answers), or HTTP 410 with `expiredWatch: "http"`.
//   allowWatchBookmarks: BOOKMARK every bookmarkIntervalMs and 2 s before timeoutSeconds ends the
//   stream. fieldSelector/labelSelector filter, and an object that stops (starts) matching is
//   sent as DELETED (ADDED), as the watch cache does.
// - create (POST), replace (PUT, resourceVersion conflicts → 409), delete (DELETE; a namespace
//   takes its objects with it at once), get.
// - the `status` subresource of pods (GET, PUT): as kube-apiserver's pod status strategy, a PUT
//   keeps the stored spec and ownerReferences and takes the rest (status, annotations, labels).
// - core v1 Events (create, list), for what a command reports on a pod.
// - POST /apis/authorization.k8s.io/v1/subjectaccessreviews, answered from a rule table: the
//   Roles, ClusterRoles and bindings stored here (evaluated by src/authz/rbac.ts), plus the
//   group system:masters.
// Faults: compact() (older resourceVersions → 410), dropWatches() (sockets destroyed mid-stream),
// failSubjectAccessReviews(). Not here: admission, validation, server-side apply, protobuf.
import { randomUUID } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { Role, RoleBinding } from "../../src/api/objects.js";
import type { RbacObjects } from "../../src/api/snapshot.js";
import { checkAccess } from "../../src/authz/rbac.js";

export interface FakeResource {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export const FAKE_RESOURCES: readonly FakeResource[] = [
  { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true },
  { group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true },
  { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true },
  { group: "k8s.cni.cncf.io", version: "v1", plural: "network-attachment-definitions", kind: "NetworkAttachmentDefinition", namespaced: true },
  { group: "k8s.cni.cncf.io", version: "v1beta1", plural: "multi-networkpolicies", kind: "MultiNetworkPolicy", namespaced: true },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", kind: "ClusterRole", namespaced: false },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", namespaced: true },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", kind: "ClusterRoleBinding", namespaced: false },
];

export interface FakeApiServerOptions {
  /** The first resourceVersion; older ones count as compacted (a cluster that has been running). Default 1000. */
  readonly initialResourceVersion?: number;
  /** How a watch from a compacted resourceVersion is refused; default `event` (ERROR event, code 410). */
  readonly expiredWatch?: "event" | "http";
  /** Bookmarks of watches that allow them; default 60 s (kube-apiserver's bookmark frequency). */
  readonly bookmarkIntervalMs?: number;
  /** When set, requests must carry `Authorization: Bearer <token>` (else 401). */
  readonly token?: string;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly watch: boolean;
}

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string } };

interface Change {
  readonly rv: number;
  readonly resource: FakeResource;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly object: Obj;
  /** The object before a MODIFIED, for selector transitions. */
  readonly previous?: Obj;
}

interface Watcher {
  readonly resource: FakeResource;
  readonly namespace: string | undefined;
  readonly matches: (object: Obj) => boolean;
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
  readonly timers: NodeJS.Timeout[];
}

export interface FakeApiServer {
  readonly url: string;
  /** A KubeConfig for this server (plain HTTP, so insecure-skip-tls-verify, as client-node requires). */
  kubeConfig(): KubeConfig;
  resourceVersion(): number;
  /** Forgets the history: watches and continue tokens from before now get 410. */
  compact(): void;
  /** Destroys the socket of every open watch mid-stream; returns how many. */
  dropWatches(): number;
  /** Open watch streams. */
  watchCount(): number;
  /** Stores objects directly (no HTTP, no events to open watches' history beyond ADDED), for large fixtures. */
  seed(kind: string, objects: readonly Record<string, unknown>[]): void;
  /** Answers the next `count` SubjectAccessReviews with `status` (e.g. 500). */
  failSubjectAccessReviews(count: number, status?: number): void;
  readonly requests: RequestRecord[];
  close(): Promise<void>;
}

const json = (res: ServerResponse, code: number, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
};

export function statusObject(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

const apiVersionOf = (r: FakeResource): string => (r.group ? `${r.group}/${r.version}` : r.version);
const keyOf = (namespace: string | undefined, name: string): string => (namespace ? `${namespace}/${name}` : name);

/** `a=b,c!=d,e==f` over dotted field paths. */
export function fieldMatcher(selector: string | null): (object: Obj) => boolean {
  const terms = parseTerms(selector);
  return (object) =>
    terms.every(({ key, op, value }) => {
      const actual = String(key.split(".").reduce<unknown>((at, part) => (at as Record<string, unknown> | undefined)?.[part], object) ?? "");
      return op === "!=" ? actual !== value : actual === value;
    });
}

/** `a=b,c!=d,e` (exists) over metadata.labels. */
export function labelMatcher(selector: string | null): (object: Obj) => boolean {
  const terms = parseTerms(selector);
  return (object) => {
    const labels = (object.metadata.labels ?? {}) as Record<string, string>;
    return terms.every(({ key, op, value }) => {
      if (op === "exists") return key in labels;
      return op === "!=" ? labels[key] !== value : labels[key] === value;
    });
  };
}

function parseTerms(selector: string | null): { key: string; op: "=" | "!=" | "exists"; value: string }[] {
  if (!selector) return [];
  return selector.split(",").filter(Boolean).map((term) => {
    const match = /^([^!=]+?)\s*(==|!=|=)\s*(.*)$/.exec(term.trim());
    if (!match) return { key: term.trim(), op: "exists" as const, value: "" };
    return { key: match[1]!, op: match[2] === "!=" ? ("!=" as const) : ("=" as const), value: match[3]! };
  });
}

interface Route {
  readonly resource: FakeResource;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  /** The `status` subresource (pods only). */
  readonly status?: boolean;
}

/** Maps `/api/v1/...` and `/apis/g/v/...` paths to a resource, namespace and name. */
function route(path: string): Route | undefined {
  const parts = path.split("/").filter(Boolean);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === "api") [group, version, rest] = ["", parts[1] ?? "", parts.slice(2)];
  else if (parts[0] === "apis") [group, version, rest] = [parts[1] ?? "", parts[2] ?? "", parts.slice(3)];
  else return undefined;
  const find = (plural: string | undefined): FakeResource | undefined =>
    FAKE_RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
  if (rest[0] === "namespaces" && rest.length >= 3) {
    const resource = find(rest[2]);
    if (resource?.kind === "Pod" && rest.length === 5 && rest[4] === "status") return { resource, namespace: rest[1], name: rest[3], status: true };
    return resource?.namespaced && rest.length <= 4 ? { resource, namespace: rest[1], name: rest[3] } : undefined;
  }
  const resource = find(rest[0]);
  return resource && rest.length <= 2 ? { resource, namespace: undefined, name: rest[1] } : undefined;
}

export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const store = new Map<FakeResource, Map<string, Obj>>(FAKE_RESOURCES.map((r) => [r, new Map()]));
  const history: Change[] = [];
  const watchers = new Set<Watcher>();
  const pages = new Map<string, { rv: number; items: Obj[] }>();
  const requests: RequestRecord[] = [];
  let rv = options.initialResourceVersion ?? 1000;
  let compactedRv = rv;
  let sarFailures: { count: number; status: number } = { count: 0, status: 500 };
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;

  const visible = (w: { namespace: string | undefined; matches: (o: Obj) => boolean }, object: Obj): boolean =>
    (w.namespace === undefined || object.metadata.namespace === w.namespace) && w.matches(object);

  const withKind = (resource: FakeResource, object: Obj): Obj => ({ apiVersion: apiVersionOf(resource), kind: resource.kind, ...object });

  function send(w: Watcher, type: string, object: unknown): void {
    if (!w.res.writableEnded && !w.res.destroyed) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  /** What a watcher sees of a change: selector transitions turn into ADDED/DELETED. */
  function deliver(w: Watcher, change: Change): void {
    if (w.resource !== change.resource) return;
    const now = visible(w, change.object);
    const before = change.previous !== undefined && visible(w, change.previous);
    const object = withKind(change.resource, change.object);
    if (change.type === "MODIFIED") {
      if (now && before) send(w, "MODIFIED", object);
      else if (now) send(w, "ADDED", object);
      else if (before) send(w, "DELETED", object);
    } else if (now) send(w, change.type, object);
  }

  function record(resource: FakeResource, type: Change["type"], object: Obj, previous?: Obj): void {
    const change: Change = { rv, resource, type, object, ...(previous && { previous }) };
    history.push(change);
    for (const w of watchers) deliver(w, change);
  }

  function write(resource: FakeResource, type: Change["type"], object: Obj, previous?: Obj): Obj {
    rv += 1;
    const stored: Obj = { ...object, metadata: { ...object.metadata, resourceVersion: String(rv) } };
    const objects = store.get(resource)!;
    const key = keyOf(stored.metadata.namespace, stored.metadata.name);
    if (type === "DELETED") objects.delete(key);
    else objects.set(key, stored);
    record(resource, type, stored, previous);
    return stored;
  }

  function create(resource: FakeResource, namespace: string | undefined, body: Obj): { object: Obj } | { error: [number, string, string] } {
    const meta = { ...(body.metadata ?? {}) } as Obj["metadata"];
    if (!meta.name && typeof meta.generateName === "string") meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    if (!meta.name) return { error: [422, "Invalid", "metadata.name: Required value: name or generateName is required"] };
    if (resource.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        return { error: [400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"] };
      }
      meta.namespace = namespace ?? meta.namespace ?? "default";
    } else delete meta.namespace;
    const key = keyOf(meta.namespace, meta.name);
    if (store.get(resource)!.has(key)) return { error: [409, "AlreadyExists", `${resource.plural} "${meta.name}" already exists`] };
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    if (resource.kind === "Namespace") meta.labels = { ...((meta.labels as Record<string, string>) ?? {}), "kubernetes.io/metadata.name": meta.name };
    delete meta.resourceVersion;
    const object: Obj = { ...body, metadata: meta };
    delete object.apiVersion;
    delete object.kind;
    if (resource.kind === "Namespace") object.status = { phase: "Active" };
    if (resource.kind === "Pod" && !object.status) object.status = { phase: "Pending" };
    return { object: withKind(resource, write(resource, "ADDED", object)) };
  }

  function remove(resource: FakeResource, existing: Obj): Obj {
    if (resource.kind === "Namespace") {
      for (const r of FAKE_RESOURCES.filter((x) => x.namespaced)) {
        for (const object of [...store.get(r)!.values()]) if (object.metadata.namespace === existing.metadata.name) write(r, "DELETED", object);
      }
    }
    return withKind(resource, write(resource, "DELETED", existing));
  }

  function rbacObjects(): RbacObjects {
    const parse = <T>(schema: { safeParse(v: unknown): { success: boolean; data?: T } }, resource: FakeResource): T[] =>
      [...store.get(resource)!.values()].flatMap((o) => {
        const parsed = schema.safeParse(withKind(resource, o));
        return parsed.success ? [parsed.data as T] : [];
      });
    const byPlural = (plural: string): FakeResource => FAKE_RESOURCES.find((r) => r.plural === plural)!;
    const roles = new Map(parse<Role>(Role, byPlural("roles")).map((r) => [keyOf(r.metadata.namespace, r.metadata.name ?? ""), r]));
    const clusterRoles = new Map(parse<Role>(Role, byPlural("clusterroles")).map((r) => [r.metadata.name ?? "", r]));
    return {
      roles,
      clusterRoles,
      roleBindings: parse<RoleBinding>(RoleBinding, byPlural("rolebindings")),
      clusterRoleBindings: parse<RoleBinding>(RoleBinding, byPlural("clusterrolebindings")),
    };
  }

  function subjectAccessReview(body: Record<string, unknown>, res: ServerResponse): void {
    if (sarFailures.count > 0) {
      sarFailures.count -= 1;
      json(res, sarFailures.status, statusObject(sarFailures.status, "InternalError", "Internal error occurred: injected by the fake API server"));
      return;
    }
    const spec = (body.spec ?? {}) as { user?: string; groups?: string[]; resourceAttributes?: Record<string, string> };
    const attrs = spec.resourceAttributes;
    if (!attrs || (!spec.user && !spec.groups?.length)) {
      json(res, 422, statusObject(422, "Invalid", "spec: Invalid value: at least one of user or group must be specified; resourceAttributes required here"));
      return;
    }
    const groups = spec.groups ?? [];
    const result = groups.includes("system:masters")
      ? { allowed: true, grantedBy: "system:masters" }
      : checkAccess(rbacObjects(), {
          user: spec.user ?? "",
          groups,
          verb: attrs.verb ?? "",
          apiGroup: attrs.group ?? "",
          resource: attrs.resource ?? "",
          ...(attrs.subresource && { subresource: attrs.subresource }),
          ...(attrs.name && { name: attrs.name }),
          ...(attrs.namespace && { namespace: attrs.namespace }),
        });
    const status = result.allowed ? { allowed: true, reason: `RBAC: allowed by ${result.grantedBy}` } : { allowed: false };
    json(res, 201, { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", metadata: {}, spec, status });
  }

  function list(r: Route, query: URLSearchParams, res: ServerResponse): void {
    const listKind = `${r.resource.kind}List`;
    const token = query.get("continue");
    const limit = Number(query.get("limit") ?? 0);
    let rvOfList = rv;
    let items: Obj[];
    let offset = 0;
    if (token) {
      const decoded = JSON.parse(Buffer.from(token, "base64url").toString()) as { id: string; offset: number; rv: number };
      const page = pages.get(decoded.id);
      if (!page || decoded.rv < compactedRv) {
        const message = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";
        json(res, 410, statusObject(410, "Expired", message));
        return;
      }
      [items, offset, rvOfList] = [page.items, decoded.offset, page.rv];
    } else {
      const asked = query.get("resourceVersion");
      if (asked && query.get("resourceVersionMatch") === "Exact" && Number(asked) < compactedRv) {
        json(res, 410, statusObject(410, "Gone", `too old resource version: ${asked} (${compactedRv})`));
        return;
      }
      const fields = fieldMatcher(query.get("fieldSelector"));
      const labels = labelMatcher(query.get("labelSelector"));
      items = [...store.get(r.resource)!.values()]
        .filter((o) => (r.namespace === undefined || o.metadata.namespace === r.namespace) && fields(o) && labels(o))
        .sort((a, b) => keyOf(a.metadata.namespace, a.metadata.name).localeCompare(keyOf(b.metadata.namespace, b.metadata.name)));
    }
    const end = limit > 0 ? offset + limit : items.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(rvOfList) };
    if (end < items.length) {
      const id = token ? (JSON.parse(Buffer.from(token, "base64url").toString()) as { id: string }).id : randomUUID();
      pages.set(id, { rv: rvOfList, items });
      metadata.continue = Buffer.from(JSON.stringify({ id, offset: end, rv: rvOfList })).toString("base64url");
      metadata.remainingItemCount = items.length - end;
    }
    // Items of built-in lists carry no kind/apiVersion on the wire; custom resources do.
    const page = items.slice(offset, end).map((o) => (r.resource.group.includes(".k8s.io") || !r.resource.group ? o : withKind(r.resource, o)));
    json(res, 200, { kind: listKind, apiVersion: apiVersionOf(r.resource), metadata, items: page });
  }

  function watch(r: Route, query: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const asked = query.get("resourceVersion") ?? "";
    const from = asked === "" || asked === "0" ? undefined : Number(asked);
    if (from !== undefined && from < compactedRv && options.expiredWatch === "http") {
      json(res, 410, statusObject(410, "Gone", `too old resource version: ${from} (${compactedRv})`));
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache, private" });
    res.flushHeaders();
    const fields = fieldMatcher(query.get("fieldSelector"));
    const labels = labelMatcher(query.get("labelSelector"));
    const w: Watcher = {
      resource: r.resource,
      namespace: r.namespace,
      matches: (o) => fields(o) && labels(o),
      res,
      bookmarks: query.get("allowWatchBookmarks") === "true",
      timers: [],
    };
    if (from !== undefined && from < compactedRv) {
      send(w, "ERROR", statusObject(410, "Expired", `too old resource version: ${from} (${compactedRv})`));
      res.end();
      return;
    }
    if (from === undefined) {
      for (const object of store.get(r.resource)!.values()) if (visible(w, object)) send(w, "ADDED", withKind(r.resource, object));
    } else {
      for (const change of history) if (change.rv > from) deliver(w, change);
    }
    const bookmark = (): void => {
      if (w.bookmarks) send(w, "BOOKMARK", { kind: r.resource.kind, apiVersion: apiVersionOf(r.resource), metadata: { resourceVersion: String(rv) } });
    };
    const interval = setInterval(bookmark, bookmarkIntervalMs);
    w.timers.push(interval);
    const timeoutSeconds = Number(query.get("timeoutSeconds") ?? 0);
    if (timeoutSeconds > 0) {
      // kube-apiserver sends a bookmark 2 s before the deadline (cacheWatcher.nextBookmarkTime), then ends the stream.
      if (timeoutSeconds > 2) w.timers.push(setTimeout(bookmark, (timeoutSeconds - 2) * 1000));
      w.timers.push(setTimeout(() => res.end(), timeoutSeconds * 1000));
    }
    watchers.add(w);
    const cleanup = (): void => {
      watchers.delete(w);
      for (const timer of w.timers) clearTimeout(timer);
      clearInterval(interval);
    };
    res.on("close", cleanup);
    req.on("close", cleanup);
  }

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  }

  /** PUT of an object, or of a pod's status subresource. */
  function replace(r: Route, existing: Obj, body: Obj, res: ServerResponse): void {
    const sent = body.metadata?.resourceVersion;
    if (sent && sent !== existing.metadata.resourceVersion) {
      const message = `Operation cannot be fulfilled on ${r.resource.plural} "${r.name}": the object has been modified; please apply your changes to the latest version and try again`;
      return json(res, 409, statusObject(409, "Conflict", message));
    }
    const metadata: Obj["metadata"] = { ...body.metadata, name: existing.metadata.name, uid: existing.metadata.uid, creationTimestamp: existing.metadata.creationTimestamp };
    if (r.resource.namespaced) metadata.namespace = existing.metadata.namespace;
    if (r.status) {
      // pkg/registry/core/pod/strategy.go podStatusStrategy.PrepareForUpdate: spec and ownerReferences stay.
      if (existing.metadata.ownerReferences !== undefined) metadata.ownerReferences = existing.metadata.ownerReferences;
      else delete metadata.ownerReferences;
    }
    const next: Obj = r.status ? { ...body, metadata, spec: existing.spec } : { ...body, metadata };
    delete next.apiVersion;
    delete next.kind;
    return json(res, 200, withKind(r.resource, write(r.resource, "MODIFIED", next, existing)));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const isWatch = url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1";
    requests.push({ method: req.method ?? "GET", path: url.pathname, query: url.searchParams, watch: isWatch });
    if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
      json(res, 401, statusObject(401, "Unauthorized", "Unauthorized"));
      return;
    }
    if (req.method === "POST" && url.pathname === "/apis/authorization.k8s.io/v1/subjectaccessreviews") {
      subjectAccessReview(await readJson(req), res);
      return;
    }
    const r = route(url.pathname);
    if (!r) {
      json(res, 404, statusObject(404, "NotFound", "the server could not find the requested resource"));
      return;
    }
    const objects = store.get(r.resource)!;
    const existing = r.name === undefined ? undefined : objects.get(keyOf(r.resource.namespaced ? r.namespace : undefined, r.name));
    const notFound = (): void => json(res, 404, statusObject(404, "NotFound", `${r.resource.plural} "${r.name}" not found`));
    switch (req.method) {
      case "GET":
        if (r.name !== undefined) return existing ? json(res, 200, withKind(r.resource, existing)) : notFound();
        return isWatch ? watch(r, url.searchParams, req, res) : list(r, url.searchParams, res);
      case "POST": {
        if (r.name !== undefined || r.status) return json(res, 405, statusObject(405, "MethodNotAllowed", "POST to a named object"));
        const created = create(r.resource, r.namespace, (await readJson(req)) as Obj);
        if ("error" in created) return json(res, created.error[0], statusObject(...created.error));
        return json(res, 201, created.object);
      }
      case "PUT":
        return existing ? replace(r, existing, (await readJson(req)) as Obj, res) : notFound();
      case "DELETE":
        if (r.status) return json(res, 405, statusObject(405, "MethodNotAllowed", "DELETE of a status subresource"));
        return existing ? json(res, 200, remove(r.resource, existing)) : notFound();
      default:
        return json(res, 405, statusObject(405, "MethodNotAllowed", `${req.method} is not supported here`));
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent) json(res, 500, statusObject(500, "InternalError", error.message));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    kubeConfig: () => kubeConfigFor(url, options.token),
    resourceVersion: () => rv,
    compact() {
      compactedRv = rv;
      history.length = 0;
      pages.clear();
    },
    dropWatches() {
      const count = watchers.size;
      for (const w of [...watchers]) w.res.socket?.destroy();
      return count;
    },
    watchCount: () => watchers.size,
    seed(kind, objects) {
      const resource = FAKE_RESOURCES.find((r) => r.kind === kind);
      if (!resource) throw new Error(`fake API server: unknown kind ${kind}`);
      for (const object of objects) {
        const created = create(resource, (object as Obj).metadata?.namespace, object as Obj);
        if ("error" in created) throw new Error(`fake API server: seed ${kind}: ${created.error[2]}`);
      }
    },
    failSubjectAccessReviews(count, status = 500) {
      sarFailures = { count, status };
    },
    requests,
    async close() {
      for (const w of [...watchers]) w.res.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A KubeConfig for a plain-HTTP test server; client-node insists on skipTLSVerify for http://. */
export function kubeConfigFor(server: string, token?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "test", server, skipTLSVerify: true }],
    users: [{ name: "test", ...(token !== undefined && { token }) }],
    contexts: [{ name: "test", cluster: "test", user: "test" }],
    currentContext: "test",
  });
  return kc;
}
