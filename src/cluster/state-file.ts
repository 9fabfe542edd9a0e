// One state file's text as cluster objects: multi-document YAML or JSON, `kind: List` expanded,
// every object checked against its schema. Parsing is a generator that pauses after each
// document and object, so that a store can spread a large file over several turns of the event
// loop (one 1,000-document file takes about a second to parse); run to the end, it is the plain
// synchronous parse.
import { Composer, LineCounter, Parser, type Document } from "yaml";
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
} from "../api/objects.js";
import type { HeldObject } from "../api/snapshot.js";
import type { SnapshotBuilder } from "./snapshot-builder.js";

/** The names of state files: every *.yaml, *.yml and *.json. */
export const STATE_FILE = /\.(ya?ml|json)$/i;

type Named = { metadata: { name?: string | undefined; namespace?: string | undefined } };

/** One object that passed its schema, with the place that names it in messages. */
export interface ParsedObject {
  readonly kind: string;
  readonly object: Named;
  readonly place: string;
}

/** A file version as objects and problems; `fault` says when the version cannot be used as a whole. */
export interface FileContent {
  readonly objects: ParsedObject[];
  readonly problems: Problem[];
  /** The first YAML error or invalid object: a half-written or broken version, not a deliberate one. */
  fault?: { readonly kind: "invalid-yaml" | "invalid-object"; readonly reason: string; readonly problem: Problem };
}

const NAMESPACED: Record<string, z.ZodType> = {
  Pod,
  ServiceAccount,
  NetworkAttachmentDefinition,
  MultiNetworkPolicy,
  Role,
  RoleBinding,
};

const INVALID = { kind: "invalid-object" } as const;

const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);

function schemaOf(kind: string): z.ZodType | undefined {
  return kind === "Namespace" ? Namespace : kind === "ClusterRole" ? Role : kind === "ClusterRoleBinding" ? RoleBinding : NAMESPACED[kind];
}

/**
 * Parses one file's text; `where` names the file in problems (`a.yaml`, `a.yaml#2 (Pod web)`).
 * Yields between documents and objects; the return value is the whole file.
 */
export function* parseStateText(where: string, text: string): Generator<void, FileContent> {
  const content: FileContent = { objects: [], problems: [] };
  const lines = new LineCounter();
  const documents: Document.Parsed[] = [];
  // The lazy form of yaml's parseAllDocuments: one document composed per step.
  for (const document of new Composer().compose(new Parser(lines.addNewLine).parse(text))) {
    documents.push(document);
    yield;
  }
  for (const [index, document] of documents.entries()) {
    const place = documents.length > 1 ? `${where}#${index + 1}` : where;
    if (document.errors.length > 0) {
      const first = document.errors[0]!;
      const at = first.pos[0] >= 0 ? lines.linePos(first.pos[0]) : undefined;
      const line = at ? ` at line ${at.line}, column ${at.col}` : "";
      const found = { code: "state.yaml" as const, path: place, message: `is not valid YAML: ${first.message.split("\n")[0]}${line}` };
      problem(content, found, { kind: "invalid-yaml", reason: `not valid YAML${line}` });
      continue;
    }
    yield* collectObject(content, place, document.toJS());
  }
  return content;
}

function problem(content: FileContent, found: Problem, fault?: { kind: "invalid-yaml" | "invalid-object"; reason?: string }): void {
  content.problems.push(found);
  if (fault && !content.fault) content.fault = { kind: fault.kind, reason: fault.reason ?? `an invalid object at ${found.path}: ${found.message}`, problem: found };
}

/** Checks one decoded object (or `kind: List`, item by item) into `content`. */
export function* collectObject(content: FileContent, place: string, object: unknown): Generator<void, void> {
  if (object === null || object === undefined) return; // an empty document, e.g. a trailing `---`
  if (typeof object !== "object" || Array.isArray(object)) {
    problem(content, { code: "state.not-object", path: place, message: "is not a Kubernetes object (expected a mapping with kind)" }, INVALID);
    return;
  }
  const kind = (object as { kind?: unknown }).kind;
  if (kind === "List" && Array.isArray((object as { items?: unknown }).items)) {
    for (const [i, item] of (object as { items: unknown[] }).items.entries()) yield* collectObject(content, `${place} items[${i}]`, item);
    return;
  }
  if (typeof kind !== "string") {
    problem(content, { code: "state.no-kind", path: place, message: "has no kind" }, INVALID);
    return;
  }
  const schema = schemaOf(kind);
  if (!schema) {
    problem(content, { code: "state.kind-ignored", path: place, message: `kind ${kind} is not read by nadguard; ignored` });
    return;
  }
  const name = (object as { metadata?: { name?: unknown } }).metadata?.name;
  const label = `${place} (${kind}${typeof name === "string" ? ` ${name}` : ""})`;
  const parsed = schema.safeParse(object);
  yield;
  if (!parsed.success) {
    for (const found of problemsFromZod(parsed.error, "", "state.invalid")) problem(content, { ...found, path: `${label}: ${found.path}` }, INVALID);
    return;
  }
  content.objects.push({ kind, object: parsed.data as Named, place: label });
}

/** Runs a parse to its end, without pausing. */
export function finish<T>(steps: Generator<void, T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** Adds a file's problems and objects to a snapshot. */
export function addFileContent(builder: SnapshotBuilder, content: FileContent): void {
  for (const found of content.problems) builder.problem(found);
  for (const { kind, object, place } of content.objects) builder.add(kind, object, place);
}

/** The kinds and namespaces a file version holds, deduplicated: what a fault says the file may hold. */
export function heldObjects(content: FileContent): HeldObject[] {
  const seen = new Map<string, HeldObject>();
  for (const { kind, object } of content.objects) {
    const namespace = CLUSTER_SCOPED.has(kind) ? undefined : object.metadata.namespace || "default";
    seen.set(`${kind}\0${namespace ?? ""}`, { kind, namespace });
  }
  return [...seen.values()];
}
