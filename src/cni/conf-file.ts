// The runtime's CNI config that makes nadguard the meta-plugin: `<cniConfigDir>/00-nadguard.conflist`,
// first in the directory's order so the runtime picks it over the cluster network's own file.
// - The cluster network is the alphabetically first `*.conf`, `*.conflist` or `*.json` of the
//   directory that is not nadguard's own and that reads as a CNI config (the runtime also skips
//   files it cannot load); its path goes in as `clusterNetwork`, as Multus' autoconfig does.
// - The one plugin is the shim (`type` `nadguard-cni`, `daemonSocketDir`) with the union of the
//   cluster network's capabilities plus `io.kubernetes.cri.pod-annotations`, so the runtime hands
//   nadguard every capability argument the cluster network would have received, and the pod's
//   annotations.
// - It is written as a temporary file in the same directory and renamed (containerd 1.6 did not
//   notice a file renamed in from elsewhere, observed with 1.6.20), only when its content changes, and it is
//   never removed by a restart (Multus does, multus-cni #1527): only by an uninstall.
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { type Problem, type Result, fail, formatProblem, ok } from "../api/errors.js";
import { type NetworkConfigList, parseNetworkConfig } from "./config.js";
import { removeFile, writeFileAtomic } from "./files.js";
import { POD_ANNOTATIONS_CAPABILITY } from "./runtime-config.js";

export const NADGUARD_CONF_FILE = "00-nadguard.conflist";
export const SHIM_TYPE = "nadguard-cni";
export const NADGUARD_NETWORK_NAME = "nadguard";

/** libcni ConfFiles' extensions. */
const CONF_EXTENSIONS = [".conf", ".conflist", ".json"];

export interface ClusterNetworkConf {
  readonly path: string;
  readonly config: NetworkConfigList;
}

/**
 * The cluster network's config in `dir`: the first file by name that is a CNI config and not
 * nadguard's; undefined when there is none. Files that do not read as configs are skipped and
 * named in `skipped`.
 */
export async function findClusterNetworkConf(dir: string): Promise<{ found?: ClusterNetworkConf; skipped: string[] }> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith(".") && n !== NADGUARD_CONF_FILE && CONF_EXTENSIONS.some((e) => n.endsWith(e))).sort();
  const skipped: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const text = await readFile(path, "utf8").catch((error: Error) => error);
    if (text instanceof Error) {
      skipped.push(`${path}: cannot be read: ${text.message}`);
      continue;
    }
    const config = parseNetworkConfig(text, path);
    if (!config.ok) {
      skipped.push(config.error.map(formatProblem).join("; "));
      continue;
    }
    if (config.value.plugins.some((p) => p.type === SHIM_TYPE)) {
      skipped.push(`${path}: runs ${SHIM_TYPE} itself; not a cluster network`);
      continue;
    }
    return { found: { path, config: config.value }, skipped };
  }
  return { skipped };
}

/** The content of 00-nadguard.conflist for a cluster network. */
export function nadguardConf(cluster: ClusterNetworkConf, socketDir: string): Record<string, unknown> {
  const capabilities: Record<string, boolean> = {};
  for (const plugin of cluster.config.plugins) for (const capability of plugin.capabilities) capabilities[capability] = true;
  capabilities[POD_ANNOTATIONS_CAPABILITY] = true;
  return {
    cniVersion: "1.0.0",
    name: NADGUARD_NETWORK_NAME,
    plugins: [{ type: SHIM_TYPE, daemonSocketDir: socketDir, clusterNetwork: cluster.path, capabilities }],
  };
}

export interface ConfSync {
  /** `written`: new or changed; `unchanged`: already so; `kept`: no cluster network, the file left as it was. */
  readonly outcome: "written" | "unchanged" | "kept";
  readonly path: string;
  readonly clusterNetwork?: string;
  /** Files passed over while looking for the cluster network. */
  readonly skipped: readonly string[];
}

/**
 * Makes `<dir>/00-nadguard.conflist` match the cluster network found in `clusterNetworkDir` (the
 * daemon's multusAutoconfigDir; default `dir` itself). With no cluster
 * network the existing file is kept: the runtime keeps calling nadguard, whose ADD then fails
 * with a clear message, instead of silently attaching pods without their secondary networks.
 */
export async function syncNadguardConf(dir: string, socketDir: string, clusterNetworkDir: string = dir): Promise<Result<ConfSync, Problem[]>> {
  const path = join(dir, NADGUARD_CONF_FILE);
  const { found, skipped } = await findClusterNetworkConf(clusterNetworkDir);
  if (found === undefined) return ok({ outcome: "kept", path, skipped });
  const body = `${JSON.stringify(nadguardConf(found, socketDir), null, 2)}\n`;
  const current = await readFile(path, "utf8").catch(() => undefined);
  if (current === body) return ok({ outcome: "unchanged", path, clusterNetwork: found.path, skipped });
  try {
    // 0644: the runtime and the tools that list a node's networks read it.
    await writeFileAtomic(path, body, 0o644);
  } catch (error) {
    return fail([{ code: "cni.conf-write", path, message: `cannot be written: ${(error as Error).message}` }]);
  }
  return ok({ outcome: "written", path, clusterNetwork: found.path, skipped });
}

/** Removes 00-nadguard.conflist (the uninstall); false when there was none. */
export async function removeNadguardConf(dir: string): Promise<Result<boolean, Problem[]>> {
  const path = join(dir, NADGUARD_CONF_FILE);
  try {
    return ok(await removeFile(path));
  } catch (error) {
    return fail([{ code: "cni.conf-remove", path, message: `cannot be removed: ${(error as Error).message}` }]);
  }
}
