// An in-memory nftables with the semantics nadguard relies on, so that the compiler and enforcer
// are tested without a kernel and tests compare dumped `nft -f` text instead of mocks (as knftables'
// fake). A transaction is applied to a copy and committed only if every operation succeeds.
//
// Modelled: tables, chains (base/regular), sets and maps with their elements, rules and handles;
// add (no-op if equal, `exists` if defined differently) vs create; insert/replace/delete by index and
// handle; flush; dangling references (`@set`, `jump`/`goto`, verdict-map values) and deleting what
// is still referenced; jumps to base chains. Not modelled: rule expressions beyond those
// references, key syntax and types, interval overlap and auto-merge, normalisation of element text
// (`10.0.0.1/32` vs `10.0.0.1`), timeouts expiring, `constant` sets refusing later elements.
import { fail, ok, type Result } from "../api/errors.js";
import { invalidTransactionError, nftErrorFromStderr, type NftError, type NftErrorReason } from "./errors.js";
import type { ListOptions, NftExecutor, NftRunResult, RunOptions } from "./exec.js";
import type { ListedRule, TableListing } from "./listing.js";
import type { NftInterface } from "./nft.js";
import { keyText, NADGUARD_TABLE, priorityValue, setTypeText, valueText, withoutHandle } from "./objects.js";
import type { Chain, Element, Family, NftMap, NftSet, Rule, TableRef } from "./objects.js";
import { renderOps, type Rendered } from "./render.js";
import { parseScript, type ScriptOp } from "./script.js";
import { stateOps, type TableState } from "./state.js";
import { Transaction, type Op } from "./transaction.js";

interface RuleModel {
  readonly rule: Rule & { readonly handle: number };
  readonly sets: readonly string[];
  readonly chains: readonly string[];
}

interface ChainModel {
  chain: Chain;
  rules: RuleModel[];
}

interface SetModel {
  def: NftSet | NftMap;
  elements: Map<string, Element>;
}

interface TableModel {
  handle: number;
  comment?: string;
  chains: Map<string, ChainModel>;
  sets: Map<string, SetModel>;
  nextHandle: number;
}

class OpError extends Error {
  constructor(
    readonly reason: NftErrorReason,
    message: string,
  ) {
    super(message);
  }
}

const ERRNO_TEXT: Partial<Record<NftErrorReason, string>> = {
  "not-found": "No such file or directory",
  exists: "File exists",
  busy: "Device or resource busy",
  invalid: "Operation not supported",
};

function failOp(reason: NftErrorReason, detail: string): never {
  throw new OpError(reason, `Could not process rule: ${ERRNO_TEXT[reason] ?? reason} (${detail})`);
}

/** Removes double-quoted strings so that references are not found inside comments or names. */
function unquoted(text: string): string {
  return text.replace(/"[^"]*"/g, '""');
}

/** The sets/maps (`@name`, not the raw payload `@nh,16,8`) and chains (`jump`/`goto`) a rule or value refers to. */
export function referencesOf(text: string): { sets: string[]; chains: string[] } {
  const plain = unquoted(text);
  const sets = [...plain.matchAll(/@([A-Za-z_.][A-Za-z0-9_./-]*)(?![A-Za-z0-9_./-]|\s*,)/g)].map((m) => m[1]!);
  const chains = [...plain.matchAll(/\b(?:jump|goto)\s+([A-Za-z_.][A-Za-z0-9_./-]*)/g)].map((m) => m[1]!);
  return { sets, chains };
}

function tableKey(ref: TableRef): string {
  return `${ref.family} ${ref.name}`;
}

function cloneTable(t: TableModel): TableModel {
  const chains = new Map<string, ChainModel>();
  for (const [name, c] of t.chains) chains.set(name, { chain: c.chain, rules: [...c.rules] });
  const sets = new Map<string, SetModel>();
  // Element maps are copied on first write (see `writableElements`): a transaction that touches one
  // set of 100k elements must not copy every other set.
  for (const [name, s] of t.sets) sets.set(name, { def: s.def, elements: s.elements });
  return { ...t, chains, sets };
}

function keySpec(s: NftSet | NftMap): string {
  const { key, value } = setTypeText(s);
  return `${s.typeof !== undefined ? "typeof" : "type"} ${key} : ${value}`;
}

function sameSetDefinition(a: NftSet | NftMap, b: NftSet | NftMap): boolean {
  if (a.kind !== b.kind) return false;
  const flags = (s: NftSet | NftMap): string => [...new Set(s.flags ?? [])].sort().join(",");
  if (flags(a) !== flags(b)) return false;
  // A typeof key is resolved to types by nft; the fake cannot compare the two forms.
  if ((a.typeof === undefined) !== (b.typeof === undefined)) return true;
  return keySpec(a) === keySpec(b);
}

/** Applies operations to a working copy of a set of tables. */
class Apply {
  readonly #tables: Map<string, TableModel>;
  readonly #copied = new Set<string>();
  readonly #ownedElements = new Set<SetModel>();

  constructor(tables: ReadonlyMap<string, TableModel>) {
    this.#tables = new Map(tables);
  }

  get tables(): Map<string, TableModel> {
    return this.#tables;
  }

  op(ref: TableRef, op: Op): void {
    const key = tableKey(ref);
    if (op.object.kind === "table") return this.#tableOp(key, op);
    const t = this.#writable(key);
    if (!t) failOp("not-found", `table ${key} does not exist`);
    switch (op.object.kind) {
      case "chain":
        return this.#chainOp(t, op.verb, op.object);
      case "set":
      case "map":
        return this.#setOp(t, op.verb, op.object);
      case "element":
        return this.#elementOp(t, op.verb, op.object);
      case "rule":
        return this.#ruleOp(t, op.verb, op.object);
    }
  }

  #writable(key: string): TableModel | undefined {
    const t = this.#tables.get(key);
    if (!t || this.#copied.has(key)) return t;
    const copy = cloneTable(t);
    this.#tables.set(key, copy);
    this.#copied.add(key);
    return copy;
  }

  #tableOp(key: string, op: Op): void {
    const exists = this.#tables.has(key);
    const obj = op.object.kind === "table" ? op.object : undefined;
    switch (op.verb) {
      case "add":
      case "create":
        if (exists && op.verb === "create") failOp("exists", `table ${key} exists`);
        if (!exists) {
          this.#tables.set(key, { handle: 1, ...(obj?.comment !== undefined ? { comment: obj.comment } : {}), chains: new Map(), sets: new Map(), nextHandle: 1 });
          this.#copied.add(key);
        }
        return;
      case "delete":
        if (!exists) failOp("not-found", `table ${key} does not exist`);
        this.#tables.delete(key);
        this.#copied.delete(key);
        return;
      case "flush": {
        const t = this.#writable(key);
        if (!t) failOp("not-found", `table ${key} does not exist`);
        // nft's `flush table` empties every chain and keeps set elements (checked on kernel 6.x).
        for (const c of t.chains.values()) c.rules = [];
        return;
      }
      default:
        failOp("invalid", `${op.verb} table`);
    }
  }

  #chainOp(t: TableModel, verb: Op["verb"], obj: Chain): void {
    const existing = t.chains.get(obj.name);
    switch (verb) {
      case "add":
      case "create":
        if (existing) {
          if (verb === "create") failOp("exists", `chain ${obj.name} exists`);
          if (obj.base === undefined) return;
          if (existing.chain.base === undefined) failOp("exists", `chain ${obj.name} exists as a regular chain`);
          const was = existing.chain.base;
          if (was.type !== obj.base.type || was.hook !== obj.base.hook || priorityValue(was.priority) !== priorityValue(obj.base.priority)) {
            failOp("invalid", `chain ${obj.name} exists with another type, hook or priority`);
          }
          // `add chain` on an existing base chain updates its policy.
          if (obj.base.policy !== undefined) existing.chain = { ...existing.chain, base: { ...was, policy: obj.base.policy } };
          return;
        }
        t.chains.set(obj.name, { chain: { ...withoutHandle(obj), handle: t.nextHandle++ }, rules: [] });
        return;
      case "delete": {
        if (!existing) failOp("not-found", `chain ${obj.name} does not exist`);
        // Kernels before 6.x refuse to delete a chain that still has rules; the fake keeps to the stricter rule.
        if (existing.rules.length > 0) failOp("busy", `chain ${obj.name} still has ${existing.rules.length} rules`);
        const user = this.#chainUser(t, obj.name);
        if (user !== undefined) failOp("busy", `chain ${obj.name} is referenced by ${user}`);
        t.chains.delete(obj.name);
        return;
      }
      case "flush":
        if (!existing) failOp("not-found", `chain ${obj.name} does not exist`);
        existing.rules = [];
        return;
      default:
        failOp("invalid", `${verb} chain`);
    }
  }

  #chainUser(t: TableModel, name: string): string | undefined {
    for (const c of t.chains.values()) {
      if (c.rules.some((r) => r.chains.includes(name))) return `a rule in chain ${c.chain.name}`;
    }
    for (const s of t.sets.values()) {
      if (s.def.kind !== "map") continue;
      for (const e of s.elements.values()) {
        if (referencesOf(valueText(e) ?? "").chains.includes(name)) return `an element of map ${s.def.name}`;
      }
    }
    return undefined;
  }

  #setOp(t: TableModel, verb: Op["verb"], obj: NftSet | NftMap): void {
    const existing = t.sets.get(obj.name);
    switch (verb) {
      case "add":
      case "create":
        if (existing) {
          if (verb === "create") failOp("exists", `${existing.def.kind} ${obj.name} exists`);
          if (!sameSetDefinition(existing.def, obj)) failOp("exists", `${existing.def.kind} ${obj.name} exists with another definition`);
          return;
        }
        t.sets.set(obj.name, { def: { ...withoutHandle(obj), handle: t.nextHandle++ }, elements: new Map() });
        this.#ownedElements.add(t.sets.get(obj.name)!);
        return;
      case "delete": {
        // Sets and maps share a namespace: `delete set` also deletes a map of that name.
        if (!existing) failOp("not-found", `${obj.kind} ${obj.name} does not exist`);
        for (const c of t.chains.values()) {
          if (c.rules.some((r) => r.sets.includes(obj.name))) failOp("busy", `${existing.def.kind} ${obj.name} is referenced by a rule in chain ${c.chain.name}`);
        }
        t.sets.delete(obj.name);
        return;
      }
      case "flush":
        if (!existing) failOp("not-found", `${obj.kind} ${obj.name} does not exist`);
        this.#writableElements(t, obj.name).clear();
        return;
      default:
        failOp("invalid", `${verb} ${obj.kind}`);
    }
  }

  #writableElements(t: TableModel, name: string): Map<string, Element> {
    const model = t.sets.get(name)!;
    if (!this.#ownedElements.has(model)) {
      const copy: SetModel = { def: model.def, elements: new Map(model.elements) };
      t.sets.set(name, copy);
      this.#ownedElements.add(copy);
      return copy.elements;
    }
    return model.elements;
  }

  #checkChainRefs(t: TableModel, chains: readonly string[], what: string): void {
    for (const name of chains) {
      const target = t.chains.get(name);
      if (!target) failOp("not-found", `${what} jumps to chain ${name}, which does not exist`);
      if (target.chain.base !== undefined) failOp("invalid", `${what} jumps to base chain ${name}`);
    }
  }

  #elementOp(t: TableModel, verb: Op["verb"], obj: Element): void {
    const model = t.sets.get(obj.set);
    if (!model) failOp("not-found", `set ${obj.set} does not exist`);
    const key = keyText(obj);
    const existing = model.elements.get(key);
    if (verb === "delete") {
      if (!existing) failOp("not-found", `element ${key} does not exist in ${obj.set}`);
      this.#writableElements(t, obj.set).delete(key);
      return;
    }
    if (verb !== "add" && verb !== "create") failOp("invalid", `${verb} element`);
    const isMap = model.def.kind === "map";
    if (isMap && obj.value === undefined) failOp("invalid", `map ${obj.set} needs a value for element ${key}`);
    if (!isMap && obj.value !== undefined) failOp("invalid", `set ${obj.set} is not a map`);
    if (obj.timeout !== undefined && !model.def.flags?.includes("timeout")) failOp("invalid", `set ${obj.set} has no flag timeout`);
    if (existing) {
      if (verb === "create" || valueText(existing) !== valueText(obj)) failOp("exists", `element ${key} exists in ${obj.set}`);
      return;
    }
    this.#checkChainRefs(t, referencesOf(valueText(obj) ?? "").chains, `element ${key}`);
    this.#writableElements(t, obj.set).set(key, obj);
  }

  #ruleOp(t: TableModel, verb: Op["verb"], obj: Rule): void {
    const c = t.chains.get(obj.chain);
    if (!c) failOp("not-found", `chain ${obj.chain} does not exist`);
    const at = (handle: number): number => {
      const index = c.rules.findIndex((r) => r.rule.handle === handle);
      if (index < 0) failOp("not-found", `chain ${obj.chain} has no rule with handle ${handle}`);
      return index;
    };
    if (verb === "delete") {
      c.rules.splice(at(obj.handle ?? 0), 1);
      return;
    }
    const refs = referencesOf(obj.rule);
    for (const name of refs.sets) {
      if (!t.sets.has(name)) failOp("not-found", `rule refers to set @${name}, which does not exist`);
    }
    this.#checkChainRefs(t, refs.chains, "rule");
    const { index: _index, ...plain } = obj;
    if (verb === "replace") {
      const i = at(obj.handle ?? 0);
      c.rules[i] = { rule: { ...plain, handle: obj.handle ?? 0 }, ...refs };
      return;
    }
    const model: RuleModel = { rule: { ...plain, handle: t.nextHandle++ }, ...refs };
    c.rules.splice(this.#position(c, verb, obj, at), 0, model);
  }

  #position(c: ChainModel, verb: Op["verb"], obj: Rule, at: (handle: number) => number): number {
    const after = verb === "add" ? 1 : 0;
    if (obj.index !== undefined) {
      if (obj.index >= c.rules.length) failOp("not-found", `chain ${obj.chain} has no rule at index ${obj.index}`);
      return obj.index + after;
    }
    if (obj.handle !== undefined) return at(obj.handle) + after;
    return verb === "add" ? c.rules.length : 0;
  }
}

export interface FakeFailure {
  /** Index of the failing operation. */
  readonly index: number;
  readonly reason: NftErrorReason;
  readonly message: string;
}

function stateOf(t: TableModel, withElements: boolean): TableState {
  const sets = [...t.sets.values()];
  return {
    ...(t.comment !== undefined ? { comment: t.comment } : {}),
    chains: [...t.chains.values()].map((c) => c.chain),
    sets: sets.map((s) => s.def),
    elements: withElements ? sets.flatMap((s) => [...s.elements.values()]) : [],
    rules: [...t.chains.values()].flatMap((c) => c.rules.map((r) => r.rule)),
  };
}

/**
 * Every table of one network namespace. `apply` is all or nothing; `check` applies to a copy
 * and discards it.
 */
export class FakeRuleset {
  #tables = new Map<string, TableModel>();

  apply(ops: readonly { ref: TableRef; op: Op }[], check = false): Result<void, FakeFailure> {
    const work = new Apply(this.#tables);
    for (const [index, { ref, op }] of ops.entries()) {
      try {
        work.op(ref, op);
      } catch (error) {
        if (!(error instanceof OpError)) throw error;
        return fail({ index, reason: error.reason, message: error.message });
      }
    }
    if (!check) this.#tables = work.tables;
    return ok(undefined);
  }

  has(ref: TableRef): boolean {
    return this.#tables.has(tableKey(ref));
  }

  /** The table as data (elements included), or undefined when it does not exist. */
  state(ref: TableRef): TableState | undefined {
    const t = this.#tables.get(tableKey(ref));
    return t === undefined ? undefined : stateOf(t, true);
  }

  /** A listing like the kernel's, with handles; rule text is always present. */
  listing(ref: TableRef, withElements: boolean): TableListing | undefined {
    const t = this.#tables.get(tableKey(ref));
    if (!t) return undefined;
    const state = stateOf(t, withElements);
    // The fake keeps rule text, not nft's JSON expressions: `expr` is empty.
    const rules: ListedRule[] = state.rules.map((r) => ({ ...r, handle: r.handle ?? 0, expr: [] }));
    return { ...state, family: ref.family, name: ref.name, handle: t.handle, rules, withElements, withText: true };
  }

  /** The table as a deterministic `nft -f` script (see `stateOps`); "" when it does not exist. */
  dump(ref: TableRef): string {
    const state = this.state(ref);
    return state === undefined ? "" : renderOps(ref, stateOps(state)).script;
  }
}

/** The 1-based line holding an operation and, for an element, the 1-based column where it starts. */
function locate(rendered: Rendered, opIndex: number): { line: number; column?: number } {
  const i = rendered.lines.findIndex((l) => opIndex >= l.firstOp && opIndex < l.firstOp + l.opCount);
  const start = rendered.lines[i]?.elementColumns?.[opIndex - rendered.lines[i]!.firstOp];
  return start === undefined ? { line: i + 1 } : { line: i + 1, column: start + 1 };
}

/** The stderr nft would print for a failure on `line` of `script`. */
function fakeStderr(script: string, line: number, message: string, column?: number): string {
  const statement = script.split("\n", line)[line - 1] ?? "";
  const from = column ?? 1;
  const to = column ?? Math.max(1, statement.length);
  return `/dev/stdin:${line}:${from}-${to}: Error: ${message}\n${statement}\n${" ".repeat(from - 1)}${"^".repeat(to - from + 1)}\n`;
}

export interface NftFakeOptions {
  readonly family?: Family;
  readonly table?: string;
  /** Share a ruleset, e.g. one of a `FakeExecutor`'s namespaces. */
  readonly ruleset?: FakeRuleset;
}

/** The fake client for one table: the same interface as `Nft`, without a process or a kernel. */
export class NftFake implements NftInterface {
  readonly family: Family;
  readonly table: string;
  readonly ruleset: FakeRuleset;
  /** Scripts of the transactions run (not checked), in order: what a real client would have sent. */
  readonly scripts: string[] = [];

  constructor(opts: NftFakeOptions = {}) {
    this.family = opts.family ?? NADGUARD_TABLE.family;
    this.table = opts.table ?? NADGUARD_TABLE.name;
    this.ruleset = opts.ruleset ?? new FakeRuleset();
  }

  get ref(): TableRef {
    return { family: this.family, name: this.table };
  }

  transaction(): Transaction {
    return new Transaction(this.ref);
  }

  run(tx: Transaction): Promise<Result<void, NftError>> {
    return Promise.resolve(this.#apply(tx, false));
  }

  check(tx: Transaction): Promise<Result<void, NftError>> {
    return Promise.resolve(this.#apply(tx, true));
  }

  list(opts: Omit<ListOptions, "netns"> = {}): Promise<Result<TableListing, NftError>> {
    const listing = this.ruleset.listing(this.ref, opts.elements ?? false);
    if (listing) return Promise.resolve(ok(listing));
    const target = `list table ${this.family} ${this.table}`;
    return Promise.resolve(fail(nftErrorFromStderr(`Error: No such file or directory\n${target}\n${"^".repeat(target.length)}\n`, { exitCode: 1 })));
  }

  /** The table as data, or undefined when it does not exist. */
  state(): TableState | undefined {
    return this.ruleset.state(this.ref);
  }

  /** The table as a deterministic `nft -f` script; "" when it does not exist. */
  dump(): string {
    return this.ruleset.dump(this.ref);
  }

  #apply(tx: Transaction, check: boolean): Result<void, NftError> {
    const problems = tx.problemsFor(this);
    if (problems.length > 0) return fail(invalidTransactionError(problems));
    if (tx.size === 0) return ok(undefined);
    const rendered = tx.rendered();
    const result = this.ruleset.apply(
      tx.ops.map((op) => ({ ref: this.ref, op })),
      check,
    );
    if (result.ok) {
      if (!check) this.scripts.push(rendered.script);
      return ok(undefined);
    }
    const { line, column } = locate(rendered, result.error.index);
    const stderr = fakeStderr(rendered.script, line, result.error.message, column);
    const opIndex = result.error.index;
    return fail({ ...nftErrorFromStderr(stderr, { script: rendered.script, exitCode: 1 }), op: tx.ops[opIndex]!, opIndex });
  }
}

/**
 * An `NftExecutor` over fake rulesets, one per network namespace (the key "" is the caller's): it
 * parses the scripts `Nft` renders and answers like nft, stderr included, so the real client runs
 * unchanged over it.
 */
export class FakeExecutor implements NftExecutor {
  readonly #namespaces = new Map<string, FakeRuleset>();
  /** Every call, in order. */
  readonly calls: { readonly kind: "run" | "check" | "list"; readonly netns?: string; readonly script?: string }[] = [];

  /** The ruleset of a namespace (created empty on first use). */
  ruleset(netns = ""): FakeRuleset {
    let ruleset = this.#namespaces.get(netns);
    if (!ruleset) {
      ruleset = new FakeRuleset();
      this.#namespaces.set(netns, ruleset);
    }
    return ruleset;
  }

  /** A fake client on a namespace's ruleset, for dumping or inspecting it. */
  fake(netns = "", ref: TableRef = NADGUARD_TABLE): NftFake {
    return new NftFake({ family: ref.family, table: ref.name, ruleset: this.ruleset(netns) });
  }

  run(script: string, opts: RunOptions): Promise<NftRunResult> {
    this.calls.push({ kind: opts.check ? "check" : "run", ...(opts.netns !== undefined ? { netns: opts.netns } : {}), script });
    const parsed = parseScript(script);
    if (!parsed.ok) {
      const { line, message } = parsed.error;
      return Promise.resolve({ exitCode: 1, stdout: "", stderr: fakeStderr(script, line, `syntax error, ${message}`) });
    }
    const ops: ScriptOp[] = parsed.value;
    const result = this.ruleset(opts.netns ?? "").apply(ops, opts.check ?? false);
    if (result.ok) return Promise.resolve({ exitCode: 0, stdout: "", stderr: "" });
    const failed = ops[result.error.index]!;
    return Promise.resolve({ exitCode: 1, stdout: "", stderr: fakeStderr(script, failed.line, result.error.message, failed.column) });
  }

  list(table: TableRef, opts: ListOptions): Promise<Result<TableListing, NftError>> {
    this.calls.push({ kind: "list", ...(opts.netns !== undefined ? { netns: opts.netns } : {}) });
    return this.fake(opts.netns ?? "", table).list(opts);
  }
}
