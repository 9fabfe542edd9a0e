// Fixtures printed by Debian bookworm's nft 1.0.6 (`nft -j list table inet nadguard` and
// `nft -a -t list table inet nadguard`) for a table built by hand.
import { describe, expect, it } from "vitest";
import { exprText, parseJsonListing, ruleTextOf, withTextListing } from "./listing.js";
import { NADGUARD_TABLE } from "./objects.js";
import { renderOps } from "./render.js";
import { stateOps } from "./state.js";

const JSON_LISTING = "{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"release_name\": \"Lester Gooch #5\", \"json_schema_version\": 1}}, {\"table\": {\"family\": \"inet\", \"name\": \"nadguard\", \"handle\": 3}}, {\"set\": {\"family\": \"inet\", \"name\": \"allow4\", \"table\": \"nadguard\", \"type\": [\"ipv4_addr\", \"inet_proto\", \"inet_service\"], \"handle\": 3, \"flags\": [\"interval\"], \"elem\": [{\"concat\": [{\"prefix\": {\"addr\": \"198.18.0.0\", \"len\": 24}}, \"tcp\", {\"range\": [80, 90]}]}, {\"concat\": [\"198.18.1.1\", \"udp\", 53]}]}}, {\"set\": {\"family\": \"inet\", \"name\": \"allow6\", \"table\": \"nadguard\", \"type\": \"ipv6_addr\", \"handle\": 4, \"flags\": [\"interval\"], \"elem\": [{\"prefix\": {\"addr\": \"fd00::\", \"len\": 64}}, \"fd00:1::1\"]}}, {\"map\": {\"family\": \"inet\", \"name\": \"vm\", \"table\": \"nadguard\", \"type\": \"ifname\", \"handle\": 5, \"map\": \"verdict\", \"elem\": [[\"net1\", {\"jump\": {\"target\": \"pod-a\"}}], [\"net2\", {\"drop\": null}]]}}, {\"map\": {\"family\": \"inet\", \"name\": \"ports\", \"table\": \"nadguard\", \"type\": \"inet_service\", \"handle\": 6, \"map\": \"mark\"}}, {\"set\": {\"family\": \"inet\", \"name\": \"tset\", \"table\": \"nadguard\", \"type\": \"ipv4_addr\", \"handle\": 11, \"comment\": \"tt\", \"flags\": [\"timeout\"], \"timeout\": 3600, \"elem\": [{\"elem\": {\"val\": \"1.2.3.4\", \"timeout\": 1800, \"expires\": 1799, \"comment\": \"x\"}}]}}, {\"chain\": {\"family\": \"inet\", \"table\": \"nadguard\", \"name\": \"input\", \"handle\": 1, \"type\": \"filter\", \"hook\": \"input\", \"prio\": 0, \"policy\": \"accept\"}}, {\"chain\": {\"family\": \"inet\", \"table\": \"nadguard\", \"name\": \"pod-a\", \"handle\": 2}}, {\"chain\": {\"family\": \"inet\", \"table\": \"nadguard\", \"name\": \"c9\", \"handle\": 12}}, {\"rule\": {\"family\": \"inet\", \"table\": \"nadguard\", \"chain\": \"input\", \"handle\": 7, \"expr\": [{\"vmap\": {\"key\": {\"meta\": {\"key\": \"iifname\"}}, \"data\": \"@vm\"}}]}}, {\"rule\": {\"family\": \"inet\", \"table\": \"nadguard\", \"chain\": \"pod-a\", \"handle\": 8, \"comment\": \"allow a\", \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"concat\": [{\"payload\": {\"protocol\": \"ip\", \"field\": \"saddr\"}}, {\"meta\": {\"key\": \"l4proto\"}}, {\"payload\": {\"protocol\": \"th\", \"field\": \"dport\"}}]}, \"right\": \"@allow4\"}}, {\"accept\": null}]}}, {\"rule\": {\"family\": \"inet\", \"table\": \"nadguard\", \"chain\": \"pod-a\", \"handle\": 9, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"ip6\", \"field\": \"saddr\"}}, \"right\": \"@allow6\"}}, {\"accept\": null}]}}, {\"rule\": {\"family\": \"inet\", \"table\": \"nadguard\", \"chain\": \"pod-a\", \"handle\": 10, \"expr\": [{\"drop\": null}]}}, {\"rule\": {\"family\": \"inet\", \"table\": \"nadguard\", \"chain\": \"c9\", \"handle\": 13, \"expr\": [{\"counter\": {\"packets\": 0, \"bytes\": 0}}, {\"accept\": null}]}}]}";

const TEXT_LISTING = "table inet nadguard { # handle 3\n\tset allow4 { # handle 3\n\t\ttype ipv4_addr . inet_proto . inet_service\n\t\tflags interval\n\t\tauto-merge\n\t}\n\n\tset allow6 { # handle 4\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n\n\tmap vm { # handle 5\n\t\ttype ifname : verdict\n\t}\n\n\tmap ports { # handle 6\n\t\ttypeof tcp dport : meta mark\n\t}\n\n\tset tset { # handle 11\n\t\ttype ipv4_addr\n\t\ttimeout 1h\n\t\tcomment \"tt\"\n\t}\n\n\tchain input { # handle 1\n\t\ttype filter hook input priority filter; policy accept;\n\t\tiifname vmap @vm # handle 7\n\t}\n\n\tchain pod-a { # handle 2\n\t\tip saddr . meta l4proto . th dport @allow4 accept comment \"allow a\" # handle 8\n\t\tip6 saddr @allow6 accept # handle 9\n\t\tdrop # handle 10\n\t}\n\n\tchain c9 { # handle 12\n\t\tcomment \"hi\"\n\t\tcounter packets 0 bytes 0 accept # handle 13\n\t}\n}\n";

describe("parseJsonListing", () => {
  it("reads tables, chains, sets, maps, elements and rules", () => {
    const parsed = parseJsonListing(JSON_LISTING, NADGUARD_TABLE, true);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const listing = parsed.value;
    expect(listing.handle).toBe(3);
    expect(listing.chains).toEqual([
      { kind: "chain", name: "input", handle: 1, base: { type: "filter", hook: "input", priority: 0, policy: "accept" } },
      { kind: "chain", name: "pod-a", handle: 2 },
      { kind: "chain", name: "c9", handle: 12 },
    ]);
    expect(listing.sets).toEqual([
      { kind: "set", name: "allow4", type: ["ipv4_addr", "inet_proto", "inet_service"], handle: 3, flags: ["interval"] },
      { kind: "set", name: "allow6", type: "ipv6_addr", handle: 4, flags: ["interval"] },
      { kind: "map", name: "vm", type: "ifname", handle: 5, value: "verdict" },
      { kind: "map", name: "ports", type: "inet_service", handle: 6, value: "mark" },
      { kind: "set", name: "tset", type: "ipv4_addr", handle: 11, flags: ["timeout"], timeout: "1h", comment: "tt" },
    ]);
    expect(listing.elements).toEqual([
      { kind: "element", set: "allow4", key: ["198.18.0.0/24", "tcp", "80-90"] },
      { kind: "element", set: "allow4", key: ["198.18.1.1", "udp", "53"] },
      { kind: "element", set: "allow6", key: ["fd00::/64"] },
      { kind: "element", set: "allow6", key: ["fd00:1::1"] },
      { kind: "element", set: "vm", key: ['"net1"'], value: ["jump pod-a"] },
      { kind: "element", set: "vm", key: ['"net2"'], value: ["drop"] },
      { kind: "element", set: "tset", key: ["1.2.3.4"], timeout: "30m", comment: "x" },
    ]);
    expect(listing.rules.map((r) => [r.chain, r.handle, r.rule, r.comment])).toEqual([
      ["input", 7, "", undefined],
      ["pod-a", 8, "", "allow a"],
      ["pod-a", 9, "", undefined],
      ["pod-a", 10, "", undefined],
      ["c9", 13, "", undefined],
    ]);
    expect(listing.rules[3]?.expr).toEqual([{ drop: null }]);
    expect(listing.withText).toBe(false);
  });

  it("fills rule text, typeof, auto-merge and chain comments from the text listing", () => {
    const parsed = parseJsonListing(JSON_LISTING, NADGUARD_TABLE, true);
    if (!parsed.ok) throw new Error("unparsed");
    const listing = withTextListing(parsed.value, TEXT_LISTING);
    expect(listing.withText).toBe(true);
    expect(renderOps(NADGUARD_TABLE, stateOps(listing)).script).toBe(
      [
        "add table inet nadguard",
        'add chain inet nadguard c9 { comment "hi"; }',
        "add chain inet nadguard input { type filter hook input priority 0; policy accept; }",
        "add chain inet nadguard pod-a",
        "add set inet nadguard allow4 { type ipv4_addr . inet_proto . inet_service; flags interval; auto-merge; }",
        "add set inet nadguard allow6 { type ipv6_addr; flags interval; }",
        "add map inet nadguard ports { typeof tcp dport : meta mark; }",
        'add set inet nadguard tset { type ipv4_addr; flags timeout; timeout 1h; comment "tt"; }',
        "add map inet nadguard vm { type ifname : verdict; }",
        "add element inet nadguard allow4 { 198.18.0.0/24 . tcp . 80-90, 198.18.1.1 . udp . 53 }",
        "add element inet nadguard allow6 { fd00:1::1, fd00::/64 }",
        'add element inet nadguard tset { 1.2.3.4 timeout 30m comment "x" }',
        'add element inet nadguard vm { "net1" : jump pod-a, "net2" : drop }',
        "add rule inet nadguard c9 counter accept",
        "add rule inet nadguard input iifname vmap @vm",
        'add rule inet nadguard pod-a ip saddr . meta l4proto . th dport @allow4 accept comment "allow a"',
        "add rule inet nadguard pod-a ip6 saddr @allow6 accept",
        "add rule inet nadguard pod-a drop",
        "",
      ].join("\n"),
    );
  });

  it("ignores other tables and reports a listing without its table", () => {
    const other = parseJsonListing(JSON_LISTING, { family: "inet", name: "other" }, false);
    expect(other.ok).toBe(false);
    if (!other.ok) expect(other.error[0]?.message).toBe("the listing holds no table inet other");
  });

  it("reports a malformed listing with the path of the bad field", () => {
    const bad = JSON.stringify({ nftables: [{ table: { family: "inet", name: "nadguard", handle: 1 } }, { chain: { family: "inet", table: "nadguard", name: "c", handle: "x" } }] });
    const parsed = parseJsonListing(bad, NADGUARD_TABLE, false);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error[0]).toMatchObject({ code: "nft.listing", path: "nftables[1].chain.handle" });
    expect(parseJsonListing("not json", NADGUARD_TABLE, false).ok).toBe(false);
  });
});

describe("exprText", () => {
  it.each([
    [{ prefix: { addr: "fd00::", len: 8 } }, undefined, "fd00::/8"],
    [{ range: [1024, 65535] }, undefined, "1024-65535"],
    [{ range: ["10.0.0.1", "10.0.0.9"] }, undefined, "10.0.0.1-10.0.0.9"],
    ["net1", "ifname", '"net1"'],
    ["tcp", "inet_proto", "tcp"],
    [{ goto: { target: "x" } }, "verdict", "goto x"],
    [{ accept: null }, "verdict", "accept"],
  ] as const)("writes %j as nft text", (expr, type, text) => {
    expect(exprText(expr, type)).toBe(text);
  });
});

describe("ruleTextOf", () => {
  it("strips the handle, the comment and counter values", () => {
    expect(ruleTextOf('ip saddr @a counter packets 12 bytes 3400 accept comment "x y" # handle 8')).toEqual({
      rule: "ip saddr @a counter accept",
      comment: "x y",
      handle: 8,
    });
  });
});
