// CNI spec versions: which ones nadguard can run, and how they compare. Results before 0.3.0
// (`ip4`/`ip6` objects) are not read: no plugin in use today answers in them, and a config that
// asks for one is refused with code 1 before any plugin runs.

/** Versions whose results nadguard reads and converts (result schemas in result.ts). */
export const RESULT_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type ResultVersion = (typeof RESULT_VERSIONS)[number];

export function isResultVersion(version: string): version is ResultVersion {
  return (RESULT_VERSIONS as readonly string[]).includes(version);
}

function parts(version: string): [number, number, number] | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`; undefined if either is not `x.y.z`. */
export function compareVersions(a: string, b: string): number | undefined {
  const pa = parts(a);
  const pb = parts(b);
  if (!pa || !pb) return undefined;
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/** `version >= atLeast`; false when either cannot be read. */
export function versionAtLeast(version: string, atLeast: string): boolean {
  return (compareVersions(version, atLeast) ?? -1) >= 0;
}
