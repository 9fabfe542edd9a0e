// CNI network configurations (spec 1.0.0 section "Configuration format"): a conflist, or a single
// plugin's config which libcni runs as a list of one (ConfListFromConf). The envelope is checked
// (name, cniVersion, plugins, each plugin's type and capabilities); every other key of a plugin's
// config is kept as written, because only the plugin knows what it means. Problems name where the
// config came from and the JSON path inside it.
import { z } from "zod";
import { type Problem, type Result, fail, ok, problemsFromZod } from "../api/errors.js";
import { decodeJson } from "./json.js";

export type JsonObject = Record<string, unknown>;

export interface PluginConfig {
  readonly type: string;
  /** The capabilities the plugin declares `true`, in the order written. */
  readonly capabilities: readonly string[];
  /** The plugin's config object exactly as written (every key kept). */
  readonly raw: JsonObject;
}

export interface NetworkConfigList {
  readonly name: string;
  readonly cniVersion: string;
  /** Skip CHECK for this network (libcni `disableCheck`). */
  readonly disableCheck: boolean;
  /** Skip GC for this network (libcni `disableGC`). */
  readonly disableGC: boolean;
  readonly plugins: readonly PluginConfig[];
  /** The list as JSON text: what the result cache keeps as the config that was run. */
  readonly bytes: string;
}

/** libcni utils.ValidateNetworkName; the same pattern is ValidateContainerID's. */
export const CNI_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** strconv.ParseBool's spellings, which libcni accepts for disableCheck and disableGC. */
const BoolLike = z.union([
  z.boolean(),
  z.enum(["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"], { message: "must be true or false" }),
]);

const PluginSchema = z.looseObject({
  type: z
    .string({ message: "must be the plugin's type (a string)" })
    .min(1, { message: "must name the plugin (its binary in the plugin path)" })
    .refine((type) => !type.includes("/"), { message: "must be a plugin name, not a path" }),
  capabilities: z.record(z.string(), z.boolean()).nullish(),
});

const VersionSchema = z.string({ message: 'is required (a CNI spec version, e.g. "1.0.0")' }).min(1, { message: 'is required (a CNI spec version, e.g. "1.0.0")' });
const NameSchema = z
  .string({ message: "is required (the network's name)" })
  .regex(CNI_NAME_PATTERN, { message: "must be letters, digits, '_', '.' and '-', starting with a letter or digit" });

const ListSchema = z.looseObject({
  cniVersion: VersionSchema,
  name: NameSchema,
  disableCheck: BoolLike.nullish(),
  disableGC: BoolLike.nullish(),
  plugins: z.array(PluginSchema, { message: "must be a list of plugin configs" }).min(1, { message: "must hold at least one plugin config" }),
});

const SingleSchema = PluginSchema.extend({ cniVersion: VersionSchema, name: NameSchema });

const truthy = (value: boolean | string | null | undefined): boolean => value === true || (typeof value === "string" && /^(1|t|true)$/i.test(value));

/** A config's JSON object from text or an already decoded value; problems name `where`. */
export function decodeConfigObject(input: string | unknown, where: string): Result<JsonObject, Problem[]> {
  let json = input;
  if (typeof input === "string") {
    const decoded = decodeJson(input);
    if (!decoded.ok) return fail([{ code: "cni.config-json", path: where, message: `is not valid JSON: ${decoded.error}` }]);
    json = decoded.value;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail([{ code: "cni.config-shape", path: where, message: "must be a JSON object (a CNI network config or conflist)" }]);
  }
  return ok(json as JsonObject);
}

function plugin(raw: JsonObject): PluginConfig {
  const declared = (raw.capabilities ?? {}) as Record<string, boolean>;
  return {
    type: raw.type as string,
    capabilities: Object.keys(declared).filter((key) => declared[key] === true),
    raw,
  };
}

/**
 * Reads a config that is either a conflist (has `plugins`) or a single plugin's config; a
 * single config becomes a list of one with the config's name and cniVersion. `input` is JSON
 * text or an already decoded value.
 */
export function parseNetworkConfig(input: string | unknown, where: string): Result<NetworkConfigList, Problem[]> {
  const decoded = decodeConfigObject(input, where);
  if (!decoded.ok) return decoded;
  const json = decoded.value;
  if ("plugins" in json) {
    const parsed = ListSchema.safeParse(json);
    if (!parsed.success) return fail(problemsFromZod(parsed.error, where, "cni.config"));
    const list = json as JsonObject & { plugins: JsonObject[] };
    return ok({
      name: parsed.data.name,
      cniVersion: parsed.data.cniVersion,
      disableCheck: truthy(parsed.data.disableCheck),
      disableGC: truthy(parsed.data.disableGC),
      plugins: list.plugins.map(plugin),
      bytes: JSON.stringify(json),
    });
  }
  const parsed = SingleSchema.safeParse(json);
  if (!parsed.success) return fail(problemsFromZod(parsed.error, where, "cni.config"));
  return ok(confListFromConf(json as JsonObject, parsed.data.name, parsed.data.cniVersion));
}

/** libcni ConfListFromConf: a single plugin config run as a list of one. */
function confListFromConf(raw: JsonObject, name: string, cniVersion: string): NetworkConfigList {
  const list = { cniVersion, name, plugins: [raw] };
  return { name, cniVersion, disableCheck: false, disableGC: false, plugins: [plugin(raw)], bytes: JSON.stringify(list) };
}
