// A small packet evaluator over a table as data (nft/state.ts TableState): it interprets the rule
// texts and set elements the ruleset writes, so that tests can check what the rendered rules do,
// independently of the model they were compiled from. It understands exactly the statements
// ruleset.ts emits (selectors joined by ` . ` looked up in a set, a selector compared with a
// value or an anonymous set, `ct state`, verdicts accept/drop); anything else is an error. Like
// the kernel, it refuses a range or prefix in a set without the interval flag (a hash set holds
// single values only), and a lookup in a set the table does not declare.
import { type Family, parseCidr, parseIp } from "../networks/addresses.js";
import type { TableState } from "../nft/state.js";
import { cidrRange } from "./ranges.js";

export interface Packet {
  /** The base chain's hook decides: input for ingress, output for egress. */
  readonly hook: "input" | "output";
  /** iifname on input, oifname on output. */
  readonly ifname: string;
  readonly family: Family;
  readonly saddr: string;
  readonly daddr: string;
  /** `tcp`, `udp`, `sctp`, `icmp`, `ipv6-icmp`. */
  readonly l4proto: string;
  readonly dport?: number;
  /** ICMP/ICMPv6 type name, e.g. `echo-request`, `nd-neighbor-solicit`. */
  readonly icmpType?: string;
  /** Default `new`. */
  readonly ctState?: "new" | "established" | "related";
}

type Value = string | bigint | number | undefined;

function selector(packet: Packet, name: string): Value {
  const ip = (which: "saddr" | "daddr", family: Family): Value => (packet.family === family ? parseIp(packet[which])!.value : undefined);
  switch (name) {
    case "iifname":
      return packet.hook === "input" ? packet.ifname : undefined;
    case "oifname":
      return packet.hook === "output" ? packet.ifname : undefined;
    case "ip saddr":
      return ip("saddr", 4);
    case "ip daddr":
      return ip("daddr", 4);
    case "ip6 saddr":
      return ip("saddr", 6);
    case "ip6 daddr":
      return ip("daddr", 6);
    case "meta l4proto":
      return packet.l4proto;
    case "th dport":
      return ["tcp", "udp", "sctp"].includes(packet.l4proto) ? packet.dport : undefined;
    case "icmp type":
      return packet.family === 4 && packet.l4proto === "icmp" ? packet.icmpType : undefined;
    case "icmpv6 type":
      return packet.family === 6 && packet.l4proto === "ipv6-icmp" ? packet.icmpType : undefined;
    default:
      throw new Error(`table-eval: unknown selector "${name}"`);
  }
}

/** Whether a value matches one part of an element key as nft text. */
function partMatches(value: Value, text: string): boolean {
  if (value === undefined) return false;
  if (typeof value === "string") return text.startsWith('"') ? text === `"${value}"` : text === value;
  if (typeof value === "number") {
    const [from, to = from] = text.split("-").map(Number);
    return from! <= value && value <= to!;
  }
  const dash = text.indexOf("-");
  if (dash > 0 && !text.includes("/")) {
    const from = parseIp(text.slice(0, dash))!.value;
    const to = parseIp(text.slice(dash + 1))!.value;
    return from <= value && value <= to;
  }
  const cidr = parseCidr(text, { allowBare: true });
  if (!cidr) throw new Error(`table-eval: cannot read element part "${text}"`);
  const r = cidrRange(cidr);
  return r.from <= value && value <= r.to;
}

function ruleMatches(packet: Packet, text: string, table: TableState): { verdict: string } | undefined {
  const verdictMatch = /\s(accept|drop)$/.exec(text);
  if (!verdictMatch) throw new Error(`table-eval: rule without a verdict: ${text}`);
  const body = text.slice(0, verdictMatch.index);
  const verdict = verdictMatch[1]!;
  const ct = /^ct state ([a-z,]+)$/.exec(body);
  if (ct) return ct[1]!.split(",").includes(packet.ctState ?? "new") ? { verdict } : undefined;
  const lookup = /^(.*) @([A-Za-z0-9_]+)$/.exec(body);
  if (lookup) {
    const values = lookup[1]!.split(" . ").map((s) => selector(packet, s.trim()));
    if (values.some((v) => v === undefined)) return undefined;
    const set = table.sets.find((x) => x.name === lookup[2]);
    if (!set) throw new Error(`table-eval: rule looks up undeclared set @${lookup[2]}`);
    const interval = set.flags?.includes("interval") ?? false;
    const hit = table.elements.some((e) => {
      if (e.set !== lookup[2]) return false;
      if (!interval) for (const part of e.key) if (!part.startsWith('"') && /[-/]/.test(part)) throw new Error(`table-eval: element part "${part}" of hash set @${e.set} is a range`);
      return e.key.length === values.length && e.key.every((part, i) => partMatches(values[i], part));
    });
    return hit ? { verdict } : undefined;
  }
  const anon = /^([a-z0-9]+ [a-z0-9]+) \{ (.*) \}$/.exec(body);
  if (anon) {
    const value = selector(packet, anon[1]!);
    return anon[2]!.split(",").some((item) => partMatches(value, item.trim())) ? { verdict } : undefined;
  }
  const compare = /^([a-z0-9]+(?: [a-z0-9]+)?) ("[^"]*"|[a-z0-9-]+)$/.exec(body);
  if (compare) return partMatches(selector(packet, compare[1]!), compare[2]!) ? { verdict } : undefined;
  throw new Error(`table-eval: cannot read rule: ${text}`);
}

/** The verdict of the base chain on `packet.hook`: the first matching rule's, else the chain policy (accept when absent). */
export function evaluatePacket(table: TableState, packet: Packet): "accept" | "drop" {
  const base = table.chains.find((c) => c.base?.hook === packet.hook);
  if (!base) return "accept";
  for (const r of table.rules) {
    if (r.chain !== base.name) continue;
    const hit = ruleMatches(packet, r.rule, table);
    if (hit) return hit.verdict as "accept" | "drop";
  }
  return base.base?.policy ?? "accept";
}
