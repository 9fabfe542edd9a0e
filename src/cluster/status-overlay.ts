// The network-status the node daemon records in a state directory:
// `<state>/.nadguard/network-status/<namespace>/<pod>.json`, the annotation's JSON list, kept apart
// from the state files as the API server keeps a pod's status apart from its spec. The walk of the
// state files skips `.nadguard`; these files are read here and laid over their pods' annotation
// `k8s.v1.cni.cncf.io/network-status`, so that render, verdict, the webhook and the enforcer see
// the addresses the daemon's delegates assigned. A file for a pod the state does not hold is
// ignored (the daemon's DEL removes it); a file that is not a valid network-status is reported
// with its path and the pod keeps what its own annotation says.
import type { Dirent } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Problem } from "../api/errors.js";
import { ANNOTATION_NETWORK_STATUS, type Pod, objectKey } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { NETWORK_STATUS_DIR, parseNetworkStatus } from "../networks/network-status.js";

export interface StatusFiles {
  /** The file's text by pod `namespace/name`. */
  readonly texts: ReadonlyMap<string, { readonly text: string; readonly path: string }>;
  /** The directories read (for a watcher): the network-status directory and one per namespace. */
  readonly directories: readonly string[];
}

const JSON_FILE = /^[^.].*\.json$/;

/** Reads every `<root>/.nadguard/network-status/<ns>/<pod>.json`; none when the directory does not exist. Never throws. */
export async function readStatusFiles(root: string): Promise<StatusFiles> {
  const base = join(root, NETWORK_STATUS_DIR);
  const texts = new Map<string, { text: string; path: string }>();
  const directories: string[] = [];
  const namespaces = await readdir(base, { withFileTypes: true }).catch(() => undefined);
  if (namespaces === undefined) return { texts, directories };
  // The directories above it too, so that a watcher sees the first pod's directory appear.
  directories.push(join(root, NETWORK_STATUS_DIR.split("/")[0]!), base);
  for (const ns of namespaces) {
    if (!ns.isDirectory() || ns.name.startsWith(".")) continue;
    const dir = join(base, ns.name);
    const files: Dirent[] = await readdir(dir, { withFileTypes: true }).catch(() => []);
    directories.push(dir);
    const reads = await Promise.all(files.filter((f) => f.isFile() && JSON_FILE.test(f.name)).map(async (f) => ({ name: f.name, text: await readFile(join(dir, f.name), "utf8").catch(() => undefined) })));
    for (const { name, text } of reads) if (text !== undefined) texts.set(objectKey(ns.name, name.slice(0, -".json".length)), { text, path: join(dir, name) });
  }
  return { texts, directories };
}

/** Whether two reads hold the same statuses. */
export function sameStatusFiles(a: StatusFiles | undefined, b: StatusFiles): boolean {
  if (a === undefined || a.texts.size !== b.texts.size) return false;
  for (const [key, { text }] of b.texts) if (a.texts.get(key)?.text !== text) return false;
  return true;
}

/** The snapshot with each pod that has a status file carrying it as its network-status annotation; bad files become problems. */
export function overlayStatuses(snapshot: Snapshot, files: StatusFiles, relative: (path: string) => string): Snapshot {
  if (files.texts.size === 0) return snapshot;
  const pods = new Map(snapshot.pods);
  const problems: Problem[] = [];
  for (const [key, { text, path }] of files.texts) {
    const pod = pods.get(key);
    if (pod === undefined) continue;
    const parsed = parseNetworkStatus(text);
    if (!parsed.ok) {
      for (const problem of parsed.error) problems.push({ ...problem, path: relative(path), message: `${problem.path}: ${problem.message}; pod ${key} keeps the network-status of its own annotations` });
      continue;
    }
    const annotations = { ...(pod.metadata.annotations ?? {}), [ANNOTATION_NETWORK_STATUS]: text };
    pods.set(key, { ...pod, metadata: { ...pod.metadata, annotations } } as Pod);
  }
  return { ...snapshot, pods, problems: problems.length > 0 ? [...snapshot.problems, ...problems] : snapshot.problems };
}
