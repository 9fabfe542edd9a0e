// stderr samples below were printed by Debian bookworm's nft 1.0.6 on kernel 6.x.
import { describe, expect, it } from "vitest";
import { classifyNftMessage, nftErrorFromStderr, parseNftStderr } from "./errors.js";
import { element, NADGUARD_TABLE, rule } from "./objects.js";
import { opAt } from "./render.js";
import { Transaction } from "./transaction.js";

const samples = {
  missingSet: [
    "/dev/stdin:1:39-43: Error: No such file or directory",
    "add rule inet nadguard pod-a ip saddr @nope accept",
    "                                      ^^^^^",
    "",
  ].join("\n"),
  missingChain: [
    "/dev/stdin:2:24-30: Error: Could not process rule: No such file or directory",
    "add rule inet nadguard nochain drop",
    "                       ^^^^^^^",
    "",
  ].join("\n"),
  syntax: [
    "/dev/stdin:3:52-52: Error: syntax error, unexpected newline",
    "add rule inet nadguard pod-a ip saddr 1.2.3.4 acept",
    "                                                   ^",
    "",
  ].join("\n"),
  exists: ["/dev/stdin:1:19-26: Error: Could not process rule: File exists", "create table inet nadguard", "                  ^^^^^^^^", ""].join("\n"),
  busy: ["/dev/stdin:1:26-31: Error: Could not process rule: Device or resource busy", "delete set inet nadguard allow4", "                         ^^^^^^", ""].join("\n"),
  notRoot: "Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted\n",
  notPermitted: ["/dev/stdin:1:1-17: Error: Could not process rule: Operation not permitted", "add table inet x", "^^^^^^^^^^^^^^^^^", ""].join("\n"),
  listMissing: ["Error: No such file or directory", "list table inet nothere", "                ^^^^^^^", ""].join("\n"),
  didYouMean: [
    "/dev/stdin:1:27-28: Error: No such file or directory; did you mean map \u2018ports\u2019 in table inet \u2018nadguard\u2019?",
    'add element inet nadguard vm { "net7" }',
    "                          ^^",
    "",
  ].join("\n"),
  notAMap: "netlink: Error: set is not a map\n",
  jumpToBase: ["/dev/stdin:5:31-31: Error: Could not process rule: Operation not supported", "add rule inet nadguard c jump b", "                              ^", ""].join("\n"),
  wrongFamily: [
    "/dev/stdin:1:36-42: Error: Could not resolve hostname: Address family for hostname not supported",
    "add element inet nadguard allow6 { 1.2.3.4 }",
    "                                   ^^^^^^^",
    "",
  ].join("\n"),
  elementMissing: ["/dev/stdin:1:39-47: Error: element does not exist", "delete element inet nadguard allow6 { fd00:9::1 }", "                                      ^^^^^^^^^", ""].join("\n"),
  keyword: [
    "/dev/stdin:1:23-31: Error: syntax error, unexpected quoted string, expecting string",
    'add set inet nadguard "missing" { type ipv4_addr; }',
    "                      ^^^^^^^^^",
    "/dev/stdin:1:51-51: Error: syntax error, unexpected '}'",
    'add set inet nadguard "missing" { type ipv4_addr; }',
    "                                                  ^",
    "/dev/stdin:3:40-46: Error: syntax error, unexpected missing, expecting string",
    "add rule inet nadguard pod-a ip daddr @missing accept",
    "                                       ^^^^^^^",
    "",
  ].join("\n"),
};

describe("parseNftStderr", () => {
  it.each([
    ["missingSet", "not-found", 1],
    ["missingChain", "not-found", 2],
    ["syntax", "syntax", 3],
    ["exists", "exists", 1],
    ["busy", "busy", 1],
    ["notRoot", "permission", undefined],
    ["notPermitted", "permission", 1],
    ["listMissing", "not-found", undefined],
    ["didYouMean", "not-found", 1],
    ["notAMap", "invalid", undefined],
    ["jumpToBase", "invalid", 5],
    ["wrongFamily", "invalid", 1],
    ["elementMissing", "not-found", 1],
    ["keyword", "syntax", 1],
  ] as const)("reads %s as %s on line %s", (name, reason, line) => {
    const [first] = parseNftStderr(samples[name]);
    expect(first?.reason).toBe(reason);
    expect(first?.line).toBe(line);
  });

  it("keeps the location, message and statement of each error", () => {
    expect(parseNftStderr(samples.keyword)).toEqual([
      {
        line: 1,
        columns: [23, 31],
        message: "syntax error, unexpected quoted string, expecting string",
        statement: 'add set inet nadguard "missing" { type ipv4_addr; }',
        reason: "syntax",
      },
      { line: 1, columns: [51, 51], message: "syntax error, unexpected '}'", statement: 'add set inet nadguard "missing" { type ipv4_addr; }', reason: "syntax" },
      {
        line: 3,
        columns: [40, 46],
        message: "syntax error, unexpected missing, expecting string",
        statement: "add rule inet nadguard pod-a ip daddr @missing accept",
        reason: "syntax",
      },
    ]);
  });

  it("reads an unlocated error with its command", () => {
    expect(parseNftStderr(samples.listMissing)).toEqual([{ message: "No such file or directory", statement: "list table inet nothere", reason: "not-found" }]);
  });

  it("keeps a message it does not recognise", () => {
    expect(parseNftStderr("something odd happened\n")).toEqual([{ message: "something odd happened", reason: "unknown" }]);
    expect(parseNftStderr("")).toEqual([{ message: "nft failed without a message", reason: "unknown" }]);
  });

  it.each([
    ["Could not process rule: Device or resource busy", "busy"],
    ["Could not process rule: Numerical result out of range", "invalid"],
    ["conflicting intervals specified", "invalid"],
    ["Datatype mismatch, expected IPv4 address, expression has type IPv6 address", "invalid"],
  ] as const)("classifies %j as %s", (message, reason) => {
    expect(classifyNftMessage(message)).toBe(reason);
  });
});

describe("nftErrorFromStderr", () => {
  it("names the failing line, its statement from the script, and the operation", () => {
    const tx = new Transaction(NADGUARD_TABLE).add({ kind: "table" }).add(rule("nochain", "drop"));
    const rendered = tx.rendered();
    const error = nftErrorFromStderr(samples.missingChain, {
      script: rendered.script,
      ops: tx.ops,
      opAt: (line, column) => opAt(rendered, line, column),
      netns: "/run/netns/pod",
      exitCode: 1,
    });
    expect(error).toMatchObject({
      code: "nft.not-found",
      reason: "not-found",
      line: 2,
      statement: "add rule inet nadguard nochain drop",
      opIndex: 1,
      path: "netns /run/netns/pod, line 2",
      message: "Could not process rule: No such file or directory: add rule inet nadguard nochain drop",
      exitCode: 1,
    });
    expect(error.op).toBe(tx.ops[1]);
  });

  it("points at the element nft underlined in a statement of many", () => {
    const tx = new Transaction(NADGUARD_TABLE).add([element("allow6", ["fd00::1"]), element("allow6", ["1.2.3.4"]), element("allow6", ["fd00::2"])]);
    const rendered = tx.rendered();
    expect(rendered.script).toBe("add element inet nadguard allow6 { fd00::1, 1.2.3.4, fd00::2 }\n");
    const stderr = [
      "/dev/stdin:1:45-51: Error: Could not resolve hostname: Address family for hostname not supported",
      "add element inet nadguard allow6 { fd00::1, 1.2.3.4, fd00::2 }",
      "                                            ^^^^^^^",
      "",
    ].join("\n");
    const error = nftErrorFromStderr(stderr, { script: rendered.script, ops: tx.ops, opAt: (l, c) => opAt(rendered, l, c) });
    expect(error.opIndex).toBe(1);
    expect(error.op?.object).toEqual(element("allow6", ["1.2.3.4"]));
  });

  it("is a permission error without a line when nft is not root", () => {
    const error = nftErrorFromStderr(samples.notRoot);
    expect(error).toMatchObject({ reason: "permission", path: "", message: "cache initialization failed: Operation not permitted" });
    expect(error.line).toBeUndefined();
  });
});
