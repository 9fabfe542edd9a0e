// `nadguard status --netns PATH`: what nadguard owns in one network namespace — table inet
// nadguard, its chains with their rules, its sets with element counts (and the interfaces it
// isolates). Reads only nadguard's table. Exit 0 (also when there is no table: "nothing"), 1 when
// the namespace does not exist or cannot be read, or when nft or nsenter is not installed.
import { stat } from "node:fs/promises";
import { ExecNftExecutor, netnsPath, type NftExecutor } from "../nft/exec.js";
import type { TableListing } from "../nft/listing.js";
import { Nft } from "../nft/nft.js";
import { keyText, priorityValue } from "../nft/objects.js";
import { EXIT, UsageError, nftToolsProblem } from "./io.js";

export interface StatusOptions {
  /** A path (`/run/netns/x`, `/proc/123/ns/net`) or a name under /run/netns. */
  netns: string;
  output?: "human" | "json" | undefined;
  /** For tests: another nft executor. */
  executor?: NftExecutor | undefined;
}

export async function runStatus(options: StatusOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  if (!options.netns) throw new UsageError("--netns is required");
  const missing = options.executor ? undefined : await nftToolsProblem("status");
  if (missing) {
    err(missing);
    return EXIT.failure;
  }
  const path = netnsPath(options.netns);
  try {
    await stat(path);
  } catch (error) {
    err(`nadguard status: no network namespace at ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    return EXIT.failure;
  }
  const nft = new Nft({ netns: path, executor: options.executor ?? new ExecNftExecutor() });
  const listing = await nft.list({ elements: true, text: true });
  if (!listing.ok) {
    if (listing.error.reason === "not-found") {
      if (options.output === "json") out(JSON.stringify({ netns: path, table: null }, null, 2));
      else out(`nothing: nadguard owns no table in ${path}`);
      return EXIT.ok;
    }
    err(`nadguard status: cannot read table inet nadguard in ${path}: ${listing.error.message}`);
    return EXIT.failure;
  }
  if (options.output === "json") out(JSON.stringify(summary(path, listing.value), null, 2));
  else printHuman(path, listing.value, out);
  return EXIT.ok;
}

interface Summary {
  netns: string;
  table: string;
  chains: { name: string; hook?: string; priority?: number | string; policy?: string; rules: string[] }[];
  sets: { name: string; kind: "set" | "map"; type: string; flags: string[]; elements: number }[];
  /** Interfaces listed in the `*_isolated` sets, by set. */
  isolated: Record<string, string[]>;
}

function summary(path: string, t: TableListing): Summary {
  const isolated: Record<string, string[]> = {};
  for (const s of t.sets) {
    if (s.name.endsWith("_isolated")) isolated[s.name] = t.elements.filter((e) => e.set === s.name).map((e) => keyText(e).replaceAll('"', ""));
  }
  return {
    netns: path,
    table: `${t.family} ${t.name}`,
    chains: t.chains.map((c) => ({
      name: c.name,
      ...(c.base && { hook: c.base.hook, priority: priorityValue(c.base.priority) ?? c.base.priority, policy: c.base.policy ?? "accept" }),
      rules: t.rules.filter((r) => r.chain === c.name).map((r) => r.rule),
    })),
    sets: t.sets.map((s) => ({
      name: s.name,
      kind: s.kind,
      type: s.typeof ?? (typeof s.type === "string" ? s.type : (s.type ?? []).join(" . ")),
      flags: [...(s.flags ?? [])],
      elements: t.elements.filter((e) => e.set === s.name).length,
    })),
    isolated,
  };
}

function printHuman(path: string, t: TableListing, out: (line: string) => void): void {
  const s = summary(path, t);
  out(`netns ${path}: table ${s.table}`);
  out("");
  out("chains:");
  for (const c of s.chains) {
    out(`  ${c.name}${c.hook ? ` (hook ${c.hook}, priority ${c.priority}, policy ${c.policy})` : ""}: ${c.rules.length} rule${c.rules.length === 1 ? "" : "s"}`);
    for (const r of c.rules) out(`    ${r}`);
  }
  out("");
  out("sets:");
  const width = Math.max(0, ...s.sets.map((x) => x.name.length));
  for (const x of s.sets) out(`  ${x.name.padEnd(width)}  ${String(x.elements).padStart(6)} element${x.elements === 1 ? " " : "s"}  ${x.kind === "map" ? "map " : ""}${x.type}${x.flags.length ? ` (${x.flags.join(", ")})` : ""}`);
  const isolatedLines = Object.entries(s.isolated).filter(([, list]) => list.length > 0);
  if (isolatedLines.length > 0) {
    out("");
    out("isolated interfaces:");
    for (const [set, list] of isolatedLines) out(`  ${set.replace(/_isolated$/, "")}: ${list.join(", ")}`);
  }
}
