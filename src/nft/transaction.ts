// A transaction: an ordered list of operations on one table, applied all or nothing by one `nft -f`
// process (one transaction per netns: nft commits a file as one netlink batch). Building one never
// does I/O; the problems of invalid objects are collected here and make `run`/`check` fail before
// nft is started.
import type { Problem } from "../api/errors.js";
import type { Container, NftObject, Rule, TableRef } from "./objects.js";
import { renderOps, type Rendered } from "./render.js";
import { isPlainElement, objectProblems } from "./validate.js";

export type Verb = "add" | "create" | "insert" | "replace" | "delete" | "flush";

export type Op =
  | { readonly verb: "add"; readonly object: NftObject }
  | { readonly verb: "create"; readonly object: Exclude<NftObject, Rule> }
  | { readonly verb: "insert" | "replace"; readonly object: Rule }
  | { readonly verb: "delete"; readonly object: NftObject }
  | { readonly verb: "flush"; readonly object: Container };

type Many<T> = T | readonly T[];

function verbProblems(op: Op, path: string): Problem[] {
  const obj = op.object;
  const problem = (message: string): Problem[] => [{ code: "nft.invalid", path, message }];
  if (op.verb === "create" && obj.kind === "rule") return problem("rules cannot be created, only added or inserted");
  if ((op.verb === "insert" || op.verb === "replace") && obj.kind !== "rule") return problem(`only rules can be ${op.verb}ed`);
  if (op.verb === "flush" && (obj.kind === "element" || obj.kind === "rule")) return problem(`a ${obj.kind} cannot be flushed`);
  if (obj.kind === "rule") {
    if ((op.verb === "replace" || op.verb === "delete") && obj.handle === undefined) return problem(`${op.verb} rule needs the rule's handle`);
    if (op.verb === "replace" && obj.index !== undefined) return problem("replace rule takes a handle, not an index");
  }
  return [];
}

/**
 * Operations on one table, in order. Each method returns the transaction for chaining and accepts one
 * object or a list (pass large element lists as a list, not spread). Consecutive element operations
 * with the same verb and set are rendered as one statement (chunked, see `render`).
 */
export class Transaction {
  readonly family: TableRef["family"];
  readonly table: string;
  #ops: Op[] = [];
  #problems: Problem[] = [];

  constructor(ref: TableRef) {
    this.family = ref.family;
    this.table = ref.name;
  }

  /** Creates the object, or does nothing if it exists (a changed base-chain policy is applied; other differences fail with `exists`). */
  add(objects: Many<NftObject>): this {
    return this.#push("add", objects);
  }

  /** Creates the object; fails with `exists` if it does. */
  create(objects: Many<Exclude<NftObject, Rule>>): this {
    return this.#push("create", objects);
  }

  /** Inserts a rule at the top of its chain, or before `index` / the rule with `handle`. */
  insert(rules: Many<Rule>): this {
    return this.#push("insert", rules);
  }

  /** Replaces the rule with `handle`. */
  replace(rules: Many<Rule>): this {
    return this.#push("replace", rules);
  }

  /** Deletes the object; fails with `not-found` if it does not exist and `busy` if it is still referenced. Rules need a handle. */
  delete(objects: Many<NftObject>): this {
    return this.#push("delete", objects);
  }

  /** Removes every rule of a chain (or of all chains of the table) or every element of a set or map. */
  flush(objects: Many<Container>): this {
    return this.#push("flush", objects);
  }

  /** Appends ready-made operations (e.g. from `diffElements` or `stateOps`). */
  append(ops: readonly Op[]): this {
    for (const op of ops) this.#pushOne(op);
    return this;
  }

  get ops(): readonly Op[] {
    return this.#ops;
  }

  /** Problems of invalid objects; a transaction with problems is never handed to nft. */
  get problems(): readonly Problem[] {
    return this.#problems;
  }

  /** `problems`, and one more when the transaction is for another table than the client's (`nft.ts` and its fake). */
  problemsFor(client: { readonly family: TableRef["family"]; readonly table: string }): Problem[] {
    if (this.family === client.family && this.table === client.table) return [...this.#problems];
    return [...this.#problems, { code: "nft.invalid", path: "", message: `the transaction is for table ${this.family} ${this.table}, this client for ${client.family} ${client.table}` }];
  }

  get size(): number {
    return this.#ops.length;
  }

  /** The `nft -f` script, one statement per line, ending with a newline ("" when empty). */
  render(): string {
    return this.rendered().script;
  }

  /** The script and which operations each of its lines holds. */
  rendered(): Rendered {
    return renderOps({ family: this.family, name: this.table }, this.#ops);
  }

  #push(verb: Verb, objects: Many<NftObject>): this {
    const list = Array.isArray(objects) ? (objects as readonly NftObject[]) : [objects as NftObject];
    for (const object of list) this.#pushOne({ verb, object } as Op);
    return this;
  }

  #pushOne(op: Op): void {
    if (op.object.kind === "element" && (op.verb === "add" || op.verb === "create" || op.verb === "delete") && isPlainElement(op.object)) {
      this.#ops.push(op);
      return;
    }
    const path = `ops[${this.#ops.length}]`;
    const problems = verbProblems(op, path);
    if (problems.length === 0) problems.push(...objectProblems(op.object, path, op.verb));
    if (problems.length > 0) this.#problems.push(...problems);
    this.#ops.push(op);
  }
}
