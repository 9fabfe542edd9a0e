// Running a network (a conflist) for one attachment, as libcni's CNIConfig does (api.go):
// - ADD runs the plugins in order, each with the list's `name` and `cniVersion` injected and the
//   previous plugin's result as `prevResult`; the last result is cached with the config as run.
// - DEL runs them in reverse, each with the cached result (converted to the list's version) as
//   `prevResult` when the list is 0.4.0 or newer; an unreadable cache is dropped, not fatal,
//   because a DEL that cannot finish leaves the sandbox stuck. The cache file goes at the end.
// - CHECK (0.4.0 and newer, unless `disableCheck`) runs them in order with the cached result.
// - STATUS and GC reach the plugins only for 1.1.0 lists; GC first DELs every cached attachment
//   of the network that is not in the valid list.
// Each plugin gets `runtimeConfig` holding only the capability arguments it declares `true` in
// `capabilities` and that have a value. A plugin error stops the operation (libcni does not undo
// an ADD half done: the runtime, or the daemon, sends DEL).
import { type Result, fail, ok } from "../api/errors.js";
import { type AttachmentKey, type CachedAttachment, ResultCache, attachmentKeyProblem } from "./cache.js";
import type { JsonObject, NetworkConfigList, PluginConfig } from "./config.js";
import { CNI_ERROR, type CniCommand, type CniError, cniError } from "./errors.js";
import { type PluginExec, SpawnPluginExec } from "./exec.js";
import { type CniArgs, type InvokeContext, type VersionInfo, invokePlugin, pluginVersions, readResult } from "./invoke.js";
import { type CniResult, convertResult } from "./result.js";
import { RESULT_VERSIONS, isResultVersion, versionAtLeast } from "./version.js";

/** Everything about one attachment besides the network config (libcni RuntimeConf). */
export interface RuntimeConf {
  readonly containerId: string;
  /** The netns path; may be empty for a DEL after the sandbox is gone. */
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS. */
  readonly args?: CniArgs;
  /** Capability arguments (`portMappings`, `mac`, `ips`…); each plugin gets those it declares. */
  readonly capabilityArgs?: Readonly<Record<string, unknown>>;
}

export interface CniRunnerOptions {
  /** Plugin directories, searched in order; the first that holds the type wins. */
  readonly pluginDirs: readonly string[];
  /** The result cache's directory (files under `<cacheDir>/results`, as libcni's `/var/lib/cni`). */
  readonly cacheDir: string;
  /** Default: real processes (SpawnPluginExec). */
  readonly exec?: PluginExec;
  /** Time limit of one plugin run, after which it is killed; default 60 000 ms. */
  readonly timeoutMs?: number;
  /** The environment the plugins inherit; default this process's. CNI_* are set per call. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;

/** What a caller of ADD may hook into. */
export interface AddHooks {
  /** Called once the first plugin's process is started. */
  readonly onStart?: () => void;
  /**
   * Given, ADD returns its result as soon as the last plugin answered and hands the result
   * cache's write here instead of waiting for it (the caller's next delegate then runs beside the
   * write); the caller must wait for it before it answers, or DELs, this attachment. Its error is
   * the one ADD would have returned.
   */
  readonly cacheWrite?: (written: Promise<Result<void, CniError>>) => void;
}

/** What a DEL did besides succeeding: problems it stepped over (an unreadable cache file), for the log. */
export interface DelReport {
  readonly warnings: readonly string[];
}

export interface GcAttachment {
  readonly containerId: string;
  readonly ifname: string;
}

/** The config one plugin of the list gets on stdin (libcni buildOneConfig + injectRuntimeConfig). */
export function pluginStdin(list: NetworkConfigList, plugin: PluginConfig, prevResult: CniResult | undefined, capabilityArgs: RuntimeConf["capabilityArgs"]): JsonObject {
  const config: JsonObject = { ...plugin.raw, name: list.name, cniVersion: list.cniVersion };
  if (prevResult !== undefined) config.prevResult = prevResult;
  const runtimeConfig: JsonObject = {};
  for (const capability of plugin.capabilities) {
    const value = capabilityArgs?.[capability];
    if (value !== undefined) runtimeConfig[capability] = value;
  }
  // As libcni, the runtime's values replace a runtimeConfig written in the config, and only then.
  if (Object.keys(runtimeConfig).length > 0) config.runtimeConfig = runtimeConfig;
  return config;
}

export class CniRunner {
  readonly cache: ResultCache;
  readonly #context: InvokeContext;

  constructor(options: CniRunnerOptions) {
    this.cache = new ResultCache(options.cacheDir);
    this.#context = {
      exec: options.exec ?? new SpawnPluginExec(),
      pluginDirs: options.pluginDirs,
      env: options.env ?? process.env,
      timeoutMs: options.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS,
    };
  }

  /** ADD: the last plugin's result, in the version it answered in (convert with convertResult). */
  async add(list: NetworkConfigList, rt: RuntimeConf, hooks: AddHooks = {}): Promise<Result<CniResult, CniError>> {
    const usable = usableVersion(list, "ADD");
    if (!usable.ok) return usable;
    const keyProblem = attachmentKeyProblem(keyOf(list, rt));
    if (keyProblem !== undefined) return fail({ ...cniError(CNI_ERROR.invalidEnvironment, keyProblem), network: list.name, command: "ADD" });
    let result: CniResult | undefined;
    for (const plugin of list.plugins) {
      const out = await this.#run("ADD", list, plugin, result, plugin === list.plugins[0] && hooks.onStart ? { ...rt, onStart: hooks.onStart } : rt);
      if (!out.ok) return out;
      const read = readResult(out.value, plugin.type, list.cniVersion);
      if (!read.ok) return fail({ ...read.error, network: list.name });
      result = read.value;
    }
    const written = this.cache
      .write({ ...keyOf(list, rt), config: list.bytes, netns: rt.netns, cniArgs: rt.args, capabilityArgs: rt.capabilityArgs, result })
      .then((w): Result<void, CniError> => (w.ok ? ok(undefined) : fail({ ...w.error, network: list.name, command: "ADD" })));
    if (hooks.cacheWrite !== undefined) {
      hooks.cacheWrite(written);
      return ok(result!);
    }
    const cached = await written;
    return cached.ok ? ok(result!) : cached;
  }

  /** DEL, idempotent: a second DEL runs the plugins again without prevResult (plugins must tolerate it, spec "DEL"). */
  async del(list: NetworkConfigList, rt: RuntimeConf): Promise<Result<DelReport, CniError>> {
    const usable = usableVersion(list, "DEL");
    if (!usable.ok) return usable;
    const warnings: string[] = [];
    let prevResult: CniResult | undefined;
    if (versionAtLeast(list.cniVersion, "0.4.0")) {
      const cached = await this.#cachedResult(list, rt);
      if (cached.ok) prevResult = cached.value;
      else warnings.push(`${cached.error.msg}; deleting without prevResult`);
    }
    for (const plugin of [...list.plugins].reverse()) {
      const out = await this.#run("DEL", list, plugin, prevResult, rt);
      if (!out.ok) return out;
    }
    const key = keyOf(list, rt);
    if (attachmentKeyProblem(key) === undefined) {
      const removed = await this.cache.remove(key);
      if (!removed.ok) warnings.push(removed.error.msg);
    }
    return ok({ warnings });
  }

  /** CHECK: code 1 for lists older than 0.4.0; an error naming the cache file when there is no readable result to check against. */
  async check(list: NetworkConfigList, rt: RuntimeConf): Promise<Result<void, CniError>> {
    if (!versionAtLeast(list.cniVersion, "0.4.0")) {
      return fail({ ...cniError(CNI_ERROR.incompatibleVersion, `network "${list.name}" is version ${list.cniVersion}: CHECK needs 0.4.0 or newer`), network: list.name, command: "CHECK" });
    }
    const usable = usableVersion(list, "CHECK");
    if (!usable.ok) return usable;
    if (list.disableCheck) return ok(undefined);
    const cached = await this.#cachedResult(list, rt);
    if (!cached.ok) return fail({ ...cached.error, network: list.name, command: "CHECK" });
    if (cached.value === undefined) {
      const file = this.cache.file(keyOf(list, rt));
      const where = file.ok ? file.value : "the result cache";
      return fail({ ...cniError(CNI_ERROR.internal, `no result of ADD to check against: ${where} does not exist`), network: list.name, command: "CHECK" });
    }
    for (const plugin of list.plugins) {
      const out = await this.#run("CHECK", list, plugin, cached.value, rt);
      if (!out.ok) return out;
    }
    return ok(undefined);
  }

  /** STATUS (spec 1.1): each plugin in order, the first error wins; lists before 1.1.0 are ready by definition. */
  async status(list: NetworkConfigList): Promise<Result<void, CniError>> {
    if (!versionAtLeast(list.cniVersion, "1.1.0")) return ok(undefined);
    for (const plugin of list.plugins) {
      const stdin = { ...plugin.raw, name: list.name, cniVersion: list.cniVersion };
      const out = await invokePlugin(this.#context, plugin.type, JSON.stringify(stdin), { command: "STATUS" });
      if (!out.ok) return fail({ ...out.error, network: list.name });
    }
    return ok(undefined);
  }

  /**
   * GC (spec 1.1, libcni GCNetworkList): DEL of every cached attachment of this network that is
   * not in `valid`, with the runtime values cached at ADD; then, for 1.1.0 lists, GC to each
   * plugin with `cni.dev/valid-attachments`. Every failure is returned, none stops the rest.
   */
  async gc(list: NetworkConfigList, valid: readonly GcAttachment[]): Promise<Result<void, CniError[]>> {
    const keep = new Set(valid.map((a) => `${a.containerId}\u0000${a.ifname}`));
    const errors: CniError[] = [];
    const { attachments } = await this.cache.list();
    for (const attachment of attachments) {
      if (attachment.network !== list.name || keep.has(`${attachment.containerId}\u0000${attachment.ifname}`)) continue;
      const deleted = await this.del(list, runtimeOf(attachment));
      if (!deleted.ok) errors.push({ ...deleted.error, msg: `cannot delete the stale attachment ${attachment.containerId} ${attachment.ifname}: ${deleted.error.msg}` });
    }
    if (versionAtLeast(list.cniVersion, "1.1.0")) {
      for (const plugin of list.plugins) {
        const stdin = { ...plugin.raw, name: list.name, cniVersion: list.cniVersion, "cni.dev/valid-attachments": valid };
        const out = await invokePlugin(this.#context, plugin.type, JSON.stringify(stdin), { command: "GC" });
        if (!out.ok) errors.push({ ...out.error, network: list.name });
      }
    }
    return errors.length === 0 ? ok(undefined) : fail(errors);
  }

  /** The spec versions a plugin speaks (VERSION). */
  versions(type: string): Promise<Result<VersionInfo, CniError>> {
    return pluginVersions(this.#context, type);
  }

  /** The cached result, converted to the list's version: undefined when none is cached. */
  async #cachedResult(list: NetworkConfigList, rt: RuntimeConf): Promise<Result<CniResult | undefined, CniError>> {
    const cached = await this.cache.read(keyOf(list, rt));
    if (!cached.ok || cached.value?.result === undefined) return cached.ok ? ok(undefined) : cached;
    const converted = convertResult(cached.value.result, list.cniVersion);
    if (!converted.ok) return fail({ ...converted.error, msg: `the cached result of network "${list.name}" cannot be given to the plugins: ${converted.error.msg}` });
    return converted;
  }

  /** One plugin run; `rt.onStart` is called once its process is started. */
  async #run(command: CniCommand, list: NetworkConfigList, plugin: PluginConfig, prevResult: CniResult | undefined, rt: RuntimeConf & { readonly onStart?: () => void }): Promise<Result<string, CniError>> {
    const stdin = JSON.stringify(pluginStdin(list, plugin, prevResult, rt.capabilityArgs));
    const out = await invokePlugin(this.#context, plugin.type, stdin, { command, containerId: rt.containerId, netns: rt.netns, ifname: rt.ifname, args: rt.args, ...(rt.onStart && { onStart: rt.onStart }) });
    return out.ok ? out : fail({ ...out.error, network: list.name });
  }
}

function keyOf(list: NetworkConfigList, rt: RuntimeConf): AttachmentKey {
  return { network: list.name, containerId: rt.containerId, ifname: rt.ifname };
}

function runtimeOf(attachment: CachedAttachment): RuntimeConf {
  return {
    containerId: attachment.containerId,
    netns: attachment.netns ?? "",
    ifname: attachment.ifname,
    ...(attachment.cniArgs !== undefined && { args: attachment.cniArgs }),
    ...(attachment.capabilityArgs !== undefined && { capabilityArgs: attachment.capabilityArgs }),
  };
}

/** Code 1 for a list whose version nadguard cannot read results of. */
function usableVersion(list: NetworkConfigList, command: CniCommand): Result<void, CniError> {
  if (isResultVersion(list.cniVersion)) return ok(undefined);
  return fail({
    ...cniError(CNI_ERROR.incompatibleVersion, `network "${list.name}" asks for CNI ${list.cniVersion}; nadguard runs ${RESULT_VERSIONS.join(", ")}`),
    network: list.name,
    command,
  });
}
