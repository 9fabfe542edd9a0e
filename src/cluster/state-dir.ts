// The state directory: cluster objects read from every *.yaml, *.yml and *.json file below a
// folder (multi-document, `kind: List` expanded). A bad file or object is reported with its path
// and does not hide the good ones; kinds nadguard does not read are noted and skipped.
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import type { z } from "zod";
import { type Problem, problemsFromZod } from "../api/errors.js";
import {
  MultiNetworkPolicy,
  Namespace,
  NetworkAttachmentDefinition,
  Pod,
  Role,
  RoleBinding,
  ServiceAccount,
  objectKey,
} from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { SnapshotBuilder } from "./snapshot-builder.js";

const STATE_FILE = /\.(ya?ml|json)$/i;

/** Lists the state files below `dir`, sorted so that loading is deterministic. */
export async function listStateFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && STATE_FILE.test(entry.name))
    .map((entry) => join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name))
    .sort();
}

/** Reads and indexes a state directory into a Snapshot. Never throws for bad content. */
export async function loadStateDir(dir: string, version = 1): Promise<Snapshot> {
  const builder = new SnapshotBuilder(version);
  let files: string[];
  try {
    files = await listStateFiles(dir);
  } catch (error) {
    builder.problem({ code: "state.read", path: dir, message: `cannot read the state directory: ${(error as Error).message}` });
    return builder.build();
  }
  const texts = await Promise.all(
    files.map(async (file) => {
      try {
        return { file, text: await readFile(file, "utf8") };
      } catch (error) {
        builder.problem({ code: "state.read", path: relative(dir, file), message: `cannot read: ${(error as Error).message}` });
        return undefined;
      }
    }),
  );
  for (const entry of texts) {
    if (entry) addStateText(builder, relative(dir, entry.file) || entry.file, entry.text);
  }
  return builder.build();
}

/** Adds every object of one file's text; `where` names the file in problems. */
export function addStateText(builder: SnapshotBuilder, where: string, text: string): void {
  const documents = parseAllDocuments(text);
  const list = Array.isArray(documents) ? documents : [documents];
  list.forEach((document, index) => {
    const place = list.length > 1 ? `${where}#${index + 1}` : where;
    if (document.errors.length > 0) {
      const first = document.errors[0]!;
      builder.problem({ code: "state.yaml", path: place, message: `is not valid YAML: ${first.message.split("\n")[0]}` });
      return;
    }
    addStateObject(builder, place, document.toJS());
  });
}

const NAMESPACED: Record<string, z.ZodType> = {
  Pod,
  ServiceAccount,
  NetworkAttachmentDefinition,
  MultiNetworkPolicy,
  Role,
  RoleBinding,
};

/** Adds one decoded object (or `kind: List`) to the builder. */
export function addStateObject(builder: SnapshotBuilder, place: string, object: unknown): void {
  if (object === null || object === undefined) return; // an empty document, e.g. a trailing `---`
  if (typeof object !== "object" || Array.isArray(object)) {
    builder.problem({ code: "state.not-object", path: place, message: "is not a Kubernetes object (expected a mapping with kind)" });
    return;
  }
  const kind = (object as { kind?: unknown }).kind;
  if (kind === "List" && Array.isArray((object as { items?: unknown }).items)) {
    ((object as { items: unknown[] }).items).forEach((item, i) => addStateObject(builder, `${place} items[${i}]`, item));
    return;
  }
  if (typeof kind !== "string") {
    builder.problem({ code: "state.no-kind", path: place, message: "has no kind" });
    return;
  }
  const schema = kind === "Namespace" ? Namespace : kind === "ClusterRole" ? Role : kind === "ClusterRoleBinding" ? RoleBinding : NAMESPACED[kind];
  if (!schema) {
    builder.problem({ code: "state.kind-ignored", path: place, message: `kind ${kind} is not read by nadguard; ignored` });
    return;
  }
  const name = (object as { metadata?: { name?: unknown } }).metadata?.name;
  const label = `${place} (${kind}${typeof name === "string" ? ` ${name}` : ""})`;
  const parsed = schema.safeParse(object);
  if (!parsed.success) {
    for (const problem of problemsFromZod(parsed.error, "", "state.invalid")) {
      builder.problem({ ...problem, path: `${label}: ${problem.path}` });
    }
    return;
  }
  builder.add(kind, parsed.data as never, label);
}

export { objectKey };
