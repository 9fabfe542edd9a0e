// The client: one table in one network namespace, in the shape of knftables —
// `new Nft(...)` → `nft.transaction()` → `tx.add(...)` → `await nft.run(tx)` (all or nothing).
import { fail, ok, type Result } from "../api/errors.js";
import { execError, invalidTransactionError, nftErrorFromStderr, type NftError } from "./errors.js";
import { defaultNftExecutor } from "./addon.js";
import type { ListOptions, NftExecutor } from "./exec.js";
import type { TableListing } from "./listing.js";
import { NADGUARD_TABLE, type Family, type TableRef } from "./objects.js";
import { opAt } from "./render.js";
import { Transaction } from "./transaction.js";

/** What the enforcer needs; implemented by `Nft` (real or over any executor) and by `NftFake`. */
export interface NftInterface {
  readonly family: Family;
  readonly table: string;
  /** A new empty transaction on this client's table. */
  transaction(): Transaction;
  /**
   * Applies the transaction in one nft process: every operation or none. An empty transaction
   * succeeds without starting nft; one with problems fails with reason `invalid` without starting it.
   */
  run(tx: Transaction): Promise<Result<void, NftError>>;
  /** Like `run` but with `nft --check`: validated by nft and the kernel, nothing changes. */
  check(tx: Transaction): Promise<Result<void, NftError>>;
  /** Reads the table back; a missing table fails with reason `not-found`. */
  list(opts?: Omit<ListOptions, "netns">): Promise<Result<TableListing, NftError>>;
}

export interface NftOptions {
  /** Default `inet`. */
  readonly family?: Family;
  /** Default `nadguard`. */
  readonly table?: string;
  /** Default: `defaultNftExecutor()` (the native addon; `nft -f` processes where it cannot load). */
  readonly executor?: NftExecutor;
  /** The network namespace (path, or name under /run/netns); absent: the caller's. */
  readonly netns?: string;
}

export class Nft implements NftInterface {
  readonly family: Family;
  readonly table: string;
  readonly netns: string | undefined;
  readonly #executor: NftExecutor;

  constructor(opts: NftOptions = {}) {
    this.family = opts.family ?? NADGUARD_TABLE.family;
    this.table = opts.table ?? NADGUARD_TABLE.name;
    this.netns = opts.netns;
    this.#executor = opts.executor ?? defaultNftExecutor().executor;
  }

  get ref(): TableRef {
    return { family: this.family, name: this.table };
  }

  transaction(): Transaction {
    return new Transaction(this.ref);
  }

  run(tx: Transaction): Promise<Result<void, NftError>> {
    return this.#apply(tx, false);
  }

  check(tx: Transaction): Promise<Result<void, NftError>> {
    return this.#apply(tx, true);
  }

  list(opts: Omit<ListOptions, "netns"> = {}): Promise<Result<TableListing, NftError>> {
    return this.#executor.list(this.ref, { ...opts, ...(this.netns !== undefined ? { netns: this.netns } : {}) });
  }

  async #apply(tx: Transaction, check: boolean): Promise<Result<void, NftError>> {
    const problems = tx.problemsFor(this);
    if (problems.length > 0) return fail(invalidTransactionError(problems, this.netns));
    if (tx.size === 0) return ok(undefined);
    const rendered = tx.rendered();
    const netns = this.netns !== undefined ? { netns: this.netns } : {};
    const result = await this.#executor.run(rendered.script, { ...netns, check });
    if (result.exitCode === 0) return ok(undefined);
    if (result.exitCode === -1) return fail(execError(result.stderr.trim(), this.netns));
    return fail(
      nftErrorFromStderr(result.stderr, {
        ...netns,
        script: rendered.script,
        ops: tx.ops,
        opAt: (line, column) => opAt(rendered, line, column),
        exitCode: result.exitCode,
      }),
    );
  }
}
