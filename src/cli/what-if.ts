// The what-if flags of `nadguard matrix` and `verdict` (`--with FILE`, `--without KIND/NS/NAME`,
// `--diff`): reading the files and applying them to the state directory's snapshot
// (src/cluster/what-if.ts). Every problem is bad input (exit 2), named by its flag and place.
import { InputError, type Problem } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import { applyWhatIf, parseRemoval, parseWithFiles, type Removal } from "../cluster/what-if.js";
import { readText } from "./io.js";

export interface WhatIfFlags {
  /** `--with FILE`, repeatable. */
  readonly with: readonly string[];
  /** `--without KIND/NS/NAME`, repeatable. */
  readonly without: readonly string[];
}

export function hasWhatIf(flags: WhatIfFlags): boolean {
  return flags.with.length > 0 || flags.without.length > 0;
}

/** The snapshot as the what-if would make it; the snapshot itself when there is none. Throws InputError. */
export async function whatIfSnapshot(snapshot: Snapshot, flags: WhatIfFlags): Promise<Snapshot> {
  if (!hasWhatIf(flags)) return snapshot;
  const problems: Problem[] = [];
  const remove: Removal[] = [];
  for (const text of flags.without) {
    const parsed = parseRemoval(text);
    if (parsed.ok) remove.push(parsed.value);
    else problems.push(...parsed.error);
  }
  const texts = new Map<string, string>();
  for (const file of flags.with) texts.set(file, await readText(file));
  const added = parseWithFiles(texts);
  if (!added.ok) problems.push(...added.error);
  if (problems.length > 0 || !added.ok) throw new InputError(problems);
  const changed = applyWhatIf(snapshot, { add: added.value, remove });
  if (!changed.ok) throw new InputError(changed.error);
  return changed.value;
}
