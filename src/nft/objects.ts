// The nftables objects nadguard writes and reads: table, chain, set, map, element and rule, as
// plain values. A transaction is bound to one table (nadguard owns `inet nadguard` and touches no
// other: README, `nadguard enforce`), so
// objects carry only their own names, as in kubernetes-sigs/knftables.

export type Family = "inet" | "ip" | "ip6";

/** The one table a client, transaction or fake is bound to. */
export interface TableRef {
  readonly family: Family;
  readonly name: string;
}

/** nadguard's table in every pod network namespace. */
export const NADGUARD_TABLE: TableRef = { family: "inet", name: "nadguard" };

export interface Table {
  readonly kind: "table";
  /** At most 128 bytes, no `"` or line breaks. nft 1.0.6 omits it from JSON listings. */
  readonly comment?: string;
  /** Set by listings only. */
  readonly handle?: number;
}

export type ChainType = "filter" | "nat" | "route";
export type Hook = "prerouting" | "input" | "forward" | "output" | "postrouting";
export type NamedPriority = "raw" | "mangle" | "dstnat" | "filter" | "security" | "srcnat";
/** A number, a name (`filter`) or a name with an offset (`filter + 10`, `mangle - 5`). */
export type Priority = number | NamedPriority | `${NamedPriority} ${"+" | "-"} ${number}`;

/** What makes a chain a base chain: it is attached to a netfilter hook. */
export interface BaseChainSpec {
  readonly type: ChainType;
  readonly hook: Hook;
  readonly priority: Priority;
  /** Absent: the kernel's default, `accept`. */
  readonly policy?: "accept" | "drop";
}

export interface Chain {
  readonly kind: "chain";
  readonly name: string;
  /** Absent for a regular chain (one that is only jumped to). */
  readonly base?: BaseChainSpec;
  readonly comment?: string;
  readonly handle?: number;
}

/** The nftables data types nadguard uses in set keys and map values. */
export type DataType =
  | "ipv4_addr"
  | "ipv6_addr"
  | "ether_addr"
  | "inet_proto"
  | "inet_service"
  | "ifname"
  | "iface_index"
  | "mark"
  | "ct_state"
  | "icmp_type"
  | "icmpv6_type"
  | "nf_proto"
  | "string"
  | "verdict";

export type SetFlag = "constant" | "dynamic" | "interval" | "timeout";

interface SetLike {
  readonly name: string;
  /** The key type; several types form a concatenation (`ipv4_addr . inet_proto . inet_service`). Exactly one of `type` and `typeof`. */
  readonly type?: DataType | readonly DataType[];
  /** The key as expressions (`ip saddr . tcp dport`). nft 1.0.6 lists it as `type` in JSON; a text listing restores it. */
  readonly typeof?: string;
  readonly flags?: readonly SetFlag[];
  /** Default element timeout, nft duration syntax (`30s`, `1h30m`); needs flag `timeout`. */
  readonly timeout?: string;
  readonly size?: number;
  readonly policy?: "performance" | "memory";
  /** Merge adjacent and overlapping intervals on insertion (interval sets only). Not in nft 1.0.6 JSON; a text listing restores it. */
  readonly autoMerge?: boolean;
  readonly comment?: string;
  readonly handle?: number;
}

export interface NftSet extends SetLike {
  readonly kind: "set";
}

export interface NftMap extends SetLike {
  readonly kind: "map";
  /** The value type (`verdict`, `mark`, …); a concatenation as a list; for a `typeof` map, an expression (`meta mark`). */
  readonly value: DataType | readonly DataType[] | string;
}

export interface Element {
  readonly kind: "element";
  /** The set or map this element belongs to. */
  readonly set: string;
  /**
   * The key as nft text, one entry per part of a concatenation: `["198.18.0.0/24", "tcp", "80-90"]`.
   * Strings of type ifname/string must carry their quotes (see `quoted`). Elements are identified by
   * this text: `10.0.0.1` and `10.0.0.1/32` are different keys to the fake though the kernel merges them.
   */
  readonly key: readonly string[];
  /** Map elements only: the value as nft text, e.g. `["jump pod-a"]` or `["drop"]`. */
  readonly value?: readonly string[];
  /** Per-element timeout (nft duration syntax); the set needs flag `timeout`. */
  readonly timeout?: string;
  readonly comment?: string;
}

export interface Rule {
  readonly kind: "rule";
  readonly chain: string;
  /** The rule as nft text without its comment, e.g. `ip saddr @allow4 accept`. One line: no `;`, `#` or line break outside quotes. */
  readonly rule: string;
  readonly comment?: string;
  /** add: place after the rule at this 0-based index; insert: before it. */
  readonly index?: number;
  /** add/insert: place after/before the rule with this handle; replace/delete: the rule to act on (required). */
  readonly handle?: number;
}

export type NftObject = Table | Chain | NftSet | NftMap | Element | Rule;
/** Objects that have a name and can be flushed. */
export type Container = Table | Chain | NftSet | NftMap;

export function table(comment?: string): Table {
  return comment === undefined ? { kind: "table" } : { kind: "table", comment };
}

export function chain(name: string, base?: BaseChainSpec, comment?: string): Chain {
  return { kind: "chain", name, ...(base ? { base } : {}), ...(comment !== undefined ? { comment } : {}) };
}

export function element(set: string, key: readonly string[], value?: readonly string[]): Element {
  return value === undefined ? { kind: "element", set, key } : { kind: "element", set, key, value };
}

export function rule(chainName: string, text: string, comment?: string): Rule {
  return comment === undefined ? { kind: "rule", chain: chainName, rule: text } : { kind: "rule", chain: chainName, rule: text, comment };
}

/** Quotes a string value (an interface name) the way nft expects it in set elements and rules. */
export function quoted(text: string): string {
  return `"${text}"`;
}

/** The key of an element as nft writes it: parts joined by ` . `. */
export function keyText(el: Pick<Element, "key">): string {
  return el.key.join(" . ");
}

/** The value of a map element as nft writes it, or undefined for a set element. */
export function valueText(el: Pick<Element, "value">): string | undefined {
  return el.value === undefined ? undefined : el.value.join(" . ");
}

/**
 * A set's or map's key type as nft writes it (its `typeof` expression, else its types joined by
 * ` . `) and a map's value type ("" for a set): what two definitions of one set must agree on.
 */
export function setTypeText(s: NftSet | NftMap): { key: string; value: string } {
  const key = s.typeof ?? (typeof s.type === "string" ? s.type : (s.type ?? []).join(" . "));
  const value = s.kind === "map" ? (typeof s.value === "string" ? s.value : s.value.join(" . ")) : "";
  return { key, value };
}

/** The object without the kernel's handle (a copy only when it has one). */
export function withoutHandle<T extends { handle?: number }>(obj: T): T {
  if (obj.handle === undefined) return obj;
  const { handle: _handle, ...rest } = obj;
  return rest as T;
}

const NAMED_PRIORITIES: Record<NamedPriority, number> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};

/**
 * The number behind a priority in the ip, ip6 and inet families (nft(8), "CHAINS"), as the kernel
 * lists it; undefined when the text is not a priority.
 */
export function priorityValue(priority: Priority | string): number | undefined {
  if (typeof priority === "number") return Number.isInteger(priority) ? priority : undefined;
  const match = /^(-?\d+)$|^([a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(priority.trim());
  if (!match) return undefined;
  if (match[1] !== undefined) return Number(match[1]);
  const base = NAMED_PRIORITIES[match[2] as NamedPriority];
  if (base === undefined) return undefined;
  const offset = match[4] === undefined ? 0 : Number(match[4]);
  return match[3] === "-" ? base - offset : base + offset;
}

const DURATION_UNITS: ReadonlyArray<readonly [string, number]> = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
  ["ms", 1],
];

/** Milliseconds of an nft duration (`1h30m`, `500ms`, `90s`); undefined if it is not one. */
export function parseDuration(text: string): number | undefined {
  if (!/^(\d+(d|h|ms|m|s))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(d|h|ms|m|s)/g)) {
    const factor = DURATION_UNITS.find(([u]) => u === unit)?.[1] ?? 0;
    total += Number(amount) * factor;
  }
  return total;
}

/** An nft duration as nft lists it (`3600000` → `1h`, `0` → `0s`). */
export function formatDuration(ms: number): string {
  let rest = Math.max(0, Math.round(ms));
  let out = "";
  for (const [unit, factor] of DURATION_UNITS) {
    const amount = Math.floor(rest / factor);
    if (amount > 0) out += `${amount}${unit}`;
    rest -= amount * factor;
  }
  return out === "" ? "0s" : out;
}
