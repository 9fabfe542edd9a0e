// What a decision adds when an object it looked up is missing while state files could not be
// read: "does not exist" is then only true of the state in use, and the person denied must learn
// that the object may be in a file nadguard cannot read, not go and create it again.
import type { Snapshot, StateFault } from "./snapshot.js";

/** Notes more faults than this as "and N more": a denial stays short however many files fail. */
const SHOWN = 3;

/**
 * The faults that may hide an object of `kind` in `namespace` (undefined: cluster-scoped): files
 * whose version in use held such objects, and every file or directory never read at all.
 */
export function faultsHiding(snapshot: Snapshot, kind: string, namespace: string | undefined): StateFault[] {
  return (snapshot.stateFaults ?? []).filter(
    (fault) => fault.holds === undefined || fault.holds.some((held) => held.kind === kind && held.namespace === namespace),
  );
}

/**
 * `""` when no fault concerns the lookup, else ` (state file nads.yaml could not be read: not valid
 * YAML at line 3, column 9; its last good version is in use)`, to follow "X does not exist".
 */
export function missingObjectNote(snapshot: Snapshot, kind: string, namespace: string | undefined): string {
  const faults = faultsHiding(snapshot, kind, namespace);
  if (faults.length === 0) return "";
  const parts = faults.slice(0, SHOWN).map((fault) => describeFault(fault, kind));
  if (faults.length > SHOWN) parts.push(`and ${faults.length - SHOWN} more unreadable state files`);
  return ` (${parts.join("; ")})`;
}

function describeFault(fault: StateFault, kind: string): string {
  const what = fault.path === "" ? "the state directory" : fault.path.endsWith("/") ? `state directory ${fault.path}` : `state file ${fault.path}`;
  const verb = fault.kind === "directory" ? "" : "could not be read: ";
  const consequence = fault.lastGoodInUse
    ? `; its last good ${fault.kind === "directory" ? "state" : "version"} is in use`
    : `, so this ${kind} may exist`;
  return `${what} ${verb}${fault.reason}${consequence}`;
}
