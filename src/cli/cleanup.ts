// `nadguard enforce --cleanup`: the uninstall step of the node enforcer (README "Uninstall"; run on
// every node by manifests/uninstall/ once the enforcer DaemonSet is gone). It finds the network
// namespace of every pod of the node as the enforcer does (same cluster source, same --netns
// resolution, same choice of pods: enforcer.ts localPods) and deletes nadguard's `inet nadguard`
// table from each that has one, in one transaction per netns. Each removal is a JSON log line at
// info, a netns without a table one at debug; the last line sums up. Idempotent: a second run finds
// nothing and exits 0. nadguard keeps nothing else on a node (no table in the host's namespace; its
// nft scripts live in a private temp folder removed after each run), so there is nothing else to
// remove. Exit 0 when no managed netns holds the table any more, 1 naming each it could not clean.
import type { Logger } from "pino";
import type { Snapshot } from "../api/snapshot.js";
import { inPool, localPods } from "../enforcer/enforcer.js";
import { podRefKey, type NetnsResolver } from "../enforcer/netns.js";
import { REMOVE_TABLE_OPS } from "../enforcer/plan.js";
import { defaultNftExecutor } from "../nft/addon.js";
import type { NftExecutor } from "../nft/exec.js";
import { Nft } from "../nft/nft.js";
import { EXIT } from "./io.js";

export interface CleanupOptions {
  readonly node: string;
  readonly snapshot: Snapshot;
  readonly resolver: NetnsResolver;
  /** Netns worked on at once. Default 8. */
  readonly parallelism?: number | undefined;
  /** Default: `defaultNftExecutor()`, as the enforcer's. */
  readonly executor?: NftExecutor | undefined;
}

type Outcome = "removed" | "none" | "failed";

export async function runCleanup(options: CleanupOptions, logger: Logger): Promise<number> {
  const started = performance.now();
  const parallelism = options.parallelism ?? 8;
  const executor = options.executor ?? defaultNftExecutor().executor;
  const pods = [...localPods(options.snapshot, options.node).values()];
  const handles = await options.resolver.resolve(pods);
  const outcomes: Outcome[] = [];
  const failed: string[] = [];
  await inPool(pods, parallelism, async (ref) => {
    const pod = podRefKey(ref);
    const lookup = handles.get(pod);
    if (!lookup?.ok) {
      // No sandbox (pending, or gone): no netns, so no table to remove.
      logger.debug({ pod, code: lookup?.error.code }, `${pod}: ${lookup ? lookup.error.message : "not resolved"}; nothing to clean`);
      return;
    }
    const netns = lookup.value.path;
    const nft = new Nft({ netns, executor });
    const listing = await nft.list();
    let outcome: Outcome;
    if (!listing.ok && listing.error.reason === "not-found") outcome = "none";
    else {
      const removed = await nft.run(nft.transaction().append(REMOVE_TABLE_OPS));
      outcome = removed.ok ? "removed" : "failed";
      if (!removed.ok) logger.error({ pod, netns, code: removed.error.code }, `${pod} (${netns}): cannot remove table inet nadguard: ${removed.error.message}`);
    }
    outcomes.push(outcome);
    if (outcome === "removed") logger.info({ pod, netns, removed: true }, `${pod}: table inet nadguard removed from ${netns}`);
    else if (outcome === "none") logger.debug({ pod, netns, removed: false }, `${pod}: no table inet nadguard in ${netns}`);
    else failed.push(pod);
  });
  const count = (outcome: Outcome): number => outcomes.filter((o) => o === outcome).length;
  const durationMs = Math.round(performance.now() - started);
  const fields = { cleaned: count("removed"), without: count("none"), failed: failed.length, durationMs };
  failed.sort();
  const message = `cleanup: table inet nadguard removed from ${fields.cleaned} netns (${fields.without} had none), ${failed.length} failed${failed.length > 0 ? ` (${failed.join(", ")})` : ""}, in ${durationMs} ms`;
  if (failed.length > 0) logger.error({ ...fields, failedPods: failed }, message);
  else logger.info(fields, message);
  return failed.length > 0 ? EXIT.failure : EXIT.ok;
}
