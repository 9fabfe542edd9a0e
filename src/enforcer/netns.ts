// Finding a pod's network namespace, behind one interface:
//   (a) a path template, for local and test use: `/var/run/netns/{namespace}_{name}`;
//   (b) a /proc scan for the pod sandbox, for real nodes without a runtime client (proc-netns.ts);
//   (c) a container-runtime (CRI) client: `lookupResolver` over a `SandboxNetnsLookup` (cri-netns.ts).
// A handle carries the namespace's identity as well as its path, so that a pod whose sandbox was
// recreated (same path, new namespace) is noticed and its table rebuilt.
import { stat } from "node:fs/promises";
import { fail, ok, type Problem, type Result } from "../api/errors.js";

/** What a resolver needs to know of a pod. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  /** metadata.uid; needed by the /proc strategy and by templates with {uid}. */
  readonly uid?: string;
}

export interface NetnsHandle {
  /** A path nsenter accepts (`/run/netns/x`, `/proc/123/ns/net`). */
  readonly path: string;
  /** The namespace's identity when it was resolved (equal ids: the same namespace). */
  readonly id: string;
}

/** Problem codes: `netns.not-found` (no sandbox / no such path), `netns.uid` (the pod has no uid), `netns.host` (would be the host's), `netns.error`. */
export type NetnsLookup = Result<NetnsHandle, Problem>;

export interface NetnsResolver {
  /** Shown in logs and status (`template /run/netns/{namespace}_{name}`, `proc`). */
  readonly description: string;
  /** Resolves pods in one go (a /proc scan is shared by all); results by `namespace/name`. Never rejects. */
  resolve(pods: readonly PodRef[]): Promise<Map<string, NetnsLookup>>;
}

export function podRefKey(pod: Pick<PodRef, "namespace" | "name">): string {
  return `${pod.namespace}/${pod.name}`;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;
const KNOWN_PLACEHOLDERS = new Set(["namespace", "name", "uid"]);

/** Problems of a template (unknown placeholders, none naming the pod); empty when usable. */
export function templateProblems(template: string): Problem[] {
  const problems: Problem[] = [];
  const used = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  for (const name of used) {
    if (!KNOWN_PLACEHOLDERS.has(name)) problems.push({ code: "netns.template", path: "--netns", message: `unknown placeholder {${name}}; use {namespace}, {name} or {uid}` });
  }
  if (!used.includes("uid") && !(used.includes("namespace") && used.includes("name"))) {
    problems.push({ code: "netns.template", path: "--netns", message: `"${template}" must name the pod: use {namespace} and {name}, or {uid}` });
  }
  return problems;
}

/** The template with the pod's fields filled in; fails when it needs a uid the pod lacks. */
export function expandTemplate(template: string, pod: PodRef): Result<string, Problem> {
  if (template.includes("{uid}") && !pod.uid) {
    return fail({ code: "netns.uid", path: podRefKey(pod), message: "the pod has no metadata.uid, which the --netns template needs" });
  }
  return ok(template.replace(PLACEHOLDER, (_, name: string) => (name === "namespace" ? pod.namespace : name === "name" ? pod.name : (pod.uid ?? ""))));
}

/** The identity of the namespace at `path` (`dev:inode` of the nsfs file), or a problem. */
export async function netnsAt(path: string, pod: PodRef): Promise<NetnsLookup> {
  try {
    const st = await stat(path);
    return ok({ path, id: `${st.dev}:${st.ino}` });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      return fail({ code: "netns.not-found", path: podRefKey(pod), message: `no network namespace at ${path} (sandbox not running yet, or already gone)` });
    }
    return fail({ code: "netns.error", path: podRefKey(pod), message: `cannot read ${path}: ${(error as Error).message}` });
  }
}

/** Strategy (a): a path per pod from a template with {namespace}, {name} and {uid}. */
export function templateResolver(template: string): NetnsResolver {
  const problems = templateProblems(template);
  if (problems.length > 0) throw new Error(problems.map((p) => p.message).join("; "));
  return {
    description: `template ${template}`,
    async resolve(pods) {
      const entries = await Promise.all(
        pods.map(async (pod): Promise<[string, NetnsLookup]> => {
          const path = expandTemplate(template, pod);
          return [podRefKey(pod), path.ok ? await netnsAt(path.value, pod) : path];
        }),
      );
      return new Map(entries);
    },
  };
}

/**
 * Strategy (c): whatever can name a pod sandbox's network namespace path. The CRI implementation
 * (cri-netns.ts) calls RuntimeService.ListPodSandbox (filter `io.kubernetes.pod.uid`, state
 * SANDBOX_READY) and PodSandboxStatus with `verbose: true`, and reads the path from `info`
 * (containerd: `runtimeSpec.linux.namespaces[type=network].path`).
 */
export interface SandboxNetnsLookup {
  /** The sandbox's netns path, or undefined when the pod has no ready sandbox. May reject on transport errors. */
  netnsPathOf(pod: PodRef): Promise<string | undefined>;
}

/** A resolver over any per-pod lookup (strategy c); the path's identity is read as in strategy (a). */
export function lookupResolver(description: string, lookup: SandboxNetnsLookup): NetnsResolver {
  return {
    description,
    async resolve(pods) {
      const entries = await Promise.all(
        pods.map(async (pod): Promise<[string, NetnsLookup]> => {
          try {
            const path = await lookup.netnsPathOf(pod);
            if (path === undefined) return [podRefKey(pod), fail({ code: "netns.not-found", path: podRefKey(pod), message: `${description}: no ready sandbox` })];
            return [podRefKey(pod), await netnsAt(path, pod)];
          } catch (error) {
            return [podRefKey(pod), fail({ code: "netns.error", path: podRefKey(pod), message: `${description}: ${(error as Error).message}` })];
          }
        }),
      );
      return new Map(entries);
    },
  };
}
