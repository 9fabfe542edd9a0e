// The nadguard configuration file (YAML). Every key has a default, documented in README.md
// ("Configuration"); unknown keys are rejected with their path so that a typo never silently
// turns a protection off.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { InputError, atPlace, problemsFromZod } from "../api/errors.js";

export const DEFAULT_NETWORK_PLUGINS = ["macvlan", "ipvlan", "bridge", "sriov", "host-device", "bond", "vlan"] as const;

const Authorization = z.strictObject({
  mode: z.enum(["rbac", "namespace-isolation", "none"]).default("rbac"),
  globalNamespaces: z.array(z.string()).default([]),
});

const Resources = z.strictObject({
  resourceNameKeys: z.array(z.string().min(1)).min(1).default(["k8s.v1.cni.cncf.io/resourceName"]),
  honorExistingResources: z.boolean().default(false),
});

const Injection = z.strictObject({
  downwardApi: z.boolean().default(false),
  nodeSelector: z.boolean().default(true),
});

const Enforcement = z.strictObject({
  networkPlugins: z.array(z.string().min(1)).default([...DEFAULT_NETWORK_PLUGINS]),
  /** Accept ICMP and ICMPv6 echo requests on isolated interfaces (neighbour discovery always is). */
  acceptIcmpEcho: z.boolean().default(false),
});

const Multus = z.strictObject({
  /** Where Multus looks up a bare name in v1.multus-cni.io/default-network (its multusNamespace). */
  namespace: z.string().min(1).default("kube-system"),
});

const Nads = z.strictObject({
  protectInUse: z.boolean().default(false),
});

export const Config = z.strictObject({
  authorization: Authorization.default(Authorization.parse({})),
  resources: Resources.default(Resources.parse({})),
  injection: Injection.default(Injection.parse({})),
  enforcement: Enforcement.default(Enforcement.parse({})),
  nads: Nads.default(Nads.parse({})),
  multus: Multus.default(Multus.parse({})),
});
export type Config = z.infer<typeof Config>;

export const DEFAULT_CONFIG: Config = Config.parse({});

/** Parses a config document (already YAML-decoded); problems name the file and the key path. */
export function parseConfig(document: unknown, source = "config"): Config {
  const parsed = Config.safeParse(document ?? {});
  if (!parsed.success) throw new InputError(atPlace(problemsFromZod(parsed.error, "", "config"), source));
  return parsed.data;
}

export async function loadConfig(file: string | undefined): Promise<Config> {
  if (!file) return DEFAULT_CONFIG;
  return parseConfig(await readYamlDocument(file, "config"), file);
}

/** A YAML (or JSON) file's document; an InputError naming the file (codes `<code>.read`, `<code>.yaml`) when it cannot be read or parsed. */
export async function readYamlDocument(file: string, code: "config" | "daemon-config"): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new InputError([{ code: `${code}.read`, path: file, message: `cannot read: ${(error as Error).message}` }]);
  }
  try {
    return parseYaml(text);
  } catch (error) {
    throw new InputError([{ code: `${code}.yaml`, path: file, message: `is not valid YAML: ${(error as Error).message}` }]);
  }
}
