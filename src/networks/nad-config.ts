// What nadguard needs to know of a NAD's CNI config on the hot path: its plugin types. Parsed once
// per NAD object (snapshots are immutable, so a WeakMap keyed on the object is a safe cache).
import type { NetworkAttachmentDefinition } from "../api/objects.js";

export interface NadCniInfo {
  /** Plugin types in delegate order; the first is the one that creates the interface. */
  readonly types: readonly string[];
  /** Why the config could not be read, when it could not. */
  readonly problem?: string;
}

const cache = new WeakMap<NetworkAttachmentDefinition, NadCniInfo>();

export function nadCniInfo(nad: NetworkAttachmentDefinition): NadCniInfo {
  let info = cache.get(nad);
  if (!info) {
    info = readCniInfo(nad.spec?.config);
    cache.set(nad, info);
  }
  return info;
}

function readCniInfo(config: string | undefined): NadCniInfo {
  // An empty config is allowed (multi-net spec 3.2.4): the node's CNI config file of that name is used.
  if (config === undefined || config.trim() === "") return { types: [] };
  let json: unknown;
  try {
    json = JSON.parse(config);
  } catch (error) {
    return { types: [], problem: `spec.config is not valid JSON: ${(error as Error).message}` };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return { types: [], problem: "spec.config is not a JSON object" };
  }
  const { plugins, type } = json as { plugins?: unknown; type?: unknown };
  if (Array.isArray(plugins)) {
    const types = plugins.map((plugin) => (plugin as { type?: unknown } | null)?.type).filter((t): t is string => typeof t === "string");
    return types.length === plugins.length && types.length > 0 ? { types } : { types, problem: "spec.config.plugins has an entry without a type" };
  }
  return typeof type === "string" ? { types: [type] } : { types: [], problem: "spec.config has no type" };
}

/** The CNI type that creates the interface, or undefined when unknown. */
export function nadMainType(nad: NetworkAttachmentDefinition): string | undefined {
  return nadCniInfo(nad).types[0];
}
