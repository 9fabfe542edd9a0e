// Test support for the incremental compiler: the check every equivalence test makes, that a
// recompile gives what a full compile of the same snapshot gives and reports as affected exactly
// the pods whose state changed.
import { expect } from "vitest";
import type { Snapshot } from "../../src/api/snapshot.js";
import { DEFAULT_CONFIG } from "../../src/config/config.js";
import { type Compiled, compile } from "../../src/policy/compiler.js";
import { type PolicyEvent, recompile } from "../../src/policy/incremental.js";

/** Each pod's state fingerprint, by pod key. */
export const fingerprints = (c: Compiled): Record<string, string> => Object.fromEntries([...c.states].map(([k, s]) => [k, s.fingerprint]));

/** Recompiles `previous` to `snapshot` (fed `events` when given), asserts it equals a full compile and names exactly the changed pods; returns the result. */
export function expectRecompileLikeFull(previous: Compiled, snapshot: Snapshot, events?: readonly PolicyEvent[]): Compiled {
  const result = recompile(previous, snapshot, DEFAULT_CONFIG, events);
  const full = fingerprints(compile(snapshot, DEFAULT_CONFIG));
  expect(fingerprints(result.compiled)).toEqual(full);
  const old = fingerprints(previous);
  const changed = [...new Set([...Object.keys(old), ...Object.keys(full)])].filter((k) => old[k] !== full[k]).sort();
  expect([...result.affected].sort()).toEqual(changed);
  return result.compiled;
}
