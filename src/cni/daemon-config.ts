// The node daemon's config file (`nadguard node --daemon-config FILE`), JSON or YAML. Its keys
// follow Multus' daemon-config.json where the meaning is the same (README, `nadguard node`), each with the
// default given there; unknown keys are rejected with their path, as in the main config file, so a
// typo never silently changes where the daemon listens or what it attaches.
import { z } from "zod";
import { InputError, atPlace, problemsFromZod } from "../api/errors.js";
import { readYamlDocument } from "../config/config.js";
import { DEFAULT_DEVICE_CHECKPOINT } from "./checkpoint.js";

export const DEFAULT_SOCKET_DIR = "/run/nadguard";
export const DEFAULT_CNI_CONFIG_DIR = "/etc/cni/net.d";
export const DEFAULT_BIN_DIR = "/opt/cni/bin";
export const DEFAULT_CNI_DIR = "/var/lib/cni/nadguard";
/** The socket's file name in `socketDir` (the shim's contract). */
export const SOCKET_NAME = "nadguard.sock";

const Path = z.string().min(1, { message: "must be a non-empty path" });
const Names = z.array(z.string().min(1));

const DaemonConfigSchema = z.strictObject({
  socketDir: Path.default(DEFAULT_SOCKET_DIR),
  cniConfigDir: Path.default(DEFAULT_CNI_CONFIG_DIR),
  /** Where the cluster network's config is looked for; absent: cniConfigDir. */
  multusAutoconfigDir: Path.optional(),
  binDir: Path.default(DEFAULT_BIN_DIR),
  cniDir: Path.default(DEFAULT_CNI_DIR),
  /** A config file path, a conf `name` in multusAutoconfigDir, or a NAD (`ns/name`, or a name in multusNamespace); absent: the first conf of multusAutoconfigDir. */
  clusterNetwork: z.string().min(1).optional(),
  defaultNetworks: Names.default([]),
  multusNamespace: z.string().min(1).default("kube-system"),
  systemNamespaces: Names.default(["kube-system"]),
  namespaceIsolation: z.boolean().default(false),
  globalNamespaces: Names.default(["default"]),
  readinessindicatorfile: Path.optional(),
  deviceCheckpoint: Path.default(DEFAULT_DEVICE_CHECKPOINT),
});

export type DaemonConfig = Omit<z.infer<typeof DaemonConfigSchema>, "multusAutoconfigDir"> & { readonly multusAutoconfigDir: string };

/** Reads a decoded document; problems name `source` and the key. */
export function parseDaemonConfig(document: unknown, source = "daemon config"): DaemonConfig {
  const parsed = DaemonConfigSchema.safeParse(document ?? {});
  if (!parsed.success) throw new InputError(atPlace(problemsFromZod(parsed.error, "", "daemon-config"), source));
  return { ...parsed.data, multusAutoconfigDir: parsed.data.multusAutoconfigDir ?? parsed.data.cniConfigDir };
}

export const DEFAULT_DAEMON_CONFIG: DaemonConfig = parseDaemonConfig({});

/** The file's config (JSON is YAML too); every default without a file. */
export async function loadDaemonConfig(file: string | undefined): Promise<DaemonConfig> {
  if (!file) return DEFAULT_DAEMON_CONFIG;
  return parseDaemonConfig(await readYamlDocument(file, "daemon-config"), file);
}
