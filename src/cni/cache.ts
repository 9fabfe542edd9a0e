// The result cache: one file per attachment (container ID + network + interface) holding the
// config that was run and the result ADD returned, so that DEL and CHECK can hand the plugins
// their `prevResult` (CNI spec 1.0.0: "the runtime must cache the result of ADD"). The file format
// and its place are libcni's (`<dir>/results/<network>-<containerID>-<ifname>`, kind `cniCacheV1`,
// the config base64 in `config`), so a node's existing tools read it; unlike libcni, a file is
// written atomically (files.ts).
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { type Result, fail, formatProblem, ok, problemsFromZod } from "../api/errors.js";
import { interfaceNameProblem } from "../networks/names.js";
import { CNI_NAME_PATTERN } from "./config.js";
import { CNI_ERROR, type CniError, cniError } from "./errors.js";
import type { CniArgs } from "./invoke.js";
import { removeFile, writeFileAtomic } from "./files.js";
import { decodeJson } from "./json.js";
import { type CniResult, parseResult } from "./result.js";

export const CACHE_KIND = "cniCacheV1";

/** Which attachment: the key of a cache file. */
export interface AttachmentKey {
  readonly network: string;
  readonly containerId: string;
  readonly ifname: string;
}

export interface CachedAttachment extends AttachmentKey {
  /** The network config that was run (the conflist as JSON text). */
  readonly config: string;
  readonly netns?: string;
  readonly cniArgs?: CniArgs;
  readonly capabilityArgs?: Readonly<Record<string, unknown>>;
  /** What ADD returned, in the version it returned it. */
  readonly result?: CniResult;
}

const CacheFileSchema = z.object({
  kind: z.literal(CACHE_KIND, { message: `must be "${CACHE_KIND}"` }),
  containerId: z.string(),
  config: z.base64({ message: "must be the config as base64" }),
  ifName: z.string(),
  networkName: z.string(),
  netns: z.string().nullish(),
  cniArgs: z.array(z.tuple([z.string(), z.string()])).nullish(),
  capabilityArgs: z.record(z.string(), z.unknown()).nullish(),
  result: z.record(z.string(), z.unknown()).nullish(),
});

/** Why a key cannot name a file (libcni ValidateContainerID, ValidateNetworkName, ValidateInterfaceName), or undefined. */
export function attachmentKeyProblem(key: AttachmentKey): string | undefined {
  if (!CNI_NAME_PATTERN.test(key.containerId)) return `container ID "${key.containerId}" must be letters, digits, '_', '.' and '-', starting with a letter or digit`;
  if (!CNI_NAME_PATTERN.test(key.network)) return `network name "${key.network}" must be letters, digits, '_', '.' and '-', starting with a letter or digit`;
  const ifname = interfaceNameProblem(key.ifname);
  return ifname === undefined ? undefined : `interface name "${key.ifname}" ${ifname}`;
}

export class ResultCache {
  /** `<dir>/results`, where the files are. */
  readonly resultsDir: string;

  constructor(dir: string) {
    this.resultsDir = join(dir, "results");
  }

  /** The file of an attachment; code 4 when the key holds something that cannot be part of a file name. */
  file(key: AttachmentKey): Result<string, CniError> {
    const problem = attachmentKeyProblem(key);
    if (problem !== undefined) return fail(cniError(CNI_ERROR.invalidEnvironment, `cannot cache the result: ${problem}`));
    return ok(join(this.resultsDir, `${key.network}-${key.containerId}-${key.ifname}`));
  }

  /** Writes (or replaces) an attachment's file, mode 0600, atomically; returns its path. */
  async write(entry: CachedAttachment): Promise<Result<string, CniError>> {
    const file = this.file(entry);
    if (!file.ok) return file;
    const body = JSON.stringify({
      kind: CACHE_KIND,
      containerId: entry.containerId,
      config: Buffer.from(entry.config).toString("base64"),
      ifName: entry.ifname,
      networkName: entry.network,
      ...(entry.netns !== undefined && entry.netns !== "" && { netns: entry.netns }),
      ...(entry.cniArgs !== undefined && entry.cniArgs.length > 0 && { cniArgs: entry.cniArgs }),
      ...(entry.capabilityArgs !== undefined && Object.keys(entry.capabilityArgs).length > 0 && { capabilityArgs: entry.capabilityArgs }),
      ...(entry.result !== undefined && { result: entry.result }),
    });
    try {
      // Not fsync'ed, as libcni writes it: DEL runs from the delegate cache, which is; a lost
      // result only means a DEL without prevResult, which the plugins accept.
      await writeFileAtomic(file.value, body, 0o600, { durable: false });
      return ok(file.value);
    } catch (error) {
      return fail(cniError(CNI_ERROR.ioFailure, `cannot write the result cache file ${file.value}: ${(error as Error).message}`));
    }
  }

  /**
   * Reads an attachment's file: undefined when there is none; an error naming the file when it
   * cannot be read or is not a cache file (a torn or foreign file must not pass for a result).
   */
  async read(key: AttachmentKey): Promise<Result<CachedAttachment | undefined, CniError>> {
    const file = this.file(key);
    if (!file.ok) return file;
    let text: string;
    try {
      text = await readFile(file.value, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return ok(undefined);
      return fail(cniError(CNI_ERROR.ioFailure, `cannot read the result cache file ${file.value}: ${(error as Error).message}`));
    }
    return parseCacheFile(text, file.value);
  }

  /** Removes an attachment's file; nothing when there is none. */
  async remove(key: AttachmentKey): Promise<Result<void, CniError>> {
    const file = this.file(key);
    if (!file.ok) return file;
    try {
      await removeFile(file.value);
      return ok(undefined);
    } catch (error) {
      return fail(cniError(CNI_ERROR.ioFailure, `cannot remove the result cache file ${file.value}: ${(error as Error).message}`));
    }
  }

  /**
   * Every cached attachment (of one container when `containerId` is given), in file-name order;
   * files that cannot be read are left out and named in `problems`. No directory: none.
   */
  async list(containerId?: string): Promise<{ attachments: CachedAttachment[]; problems: string[] }> {
    const names = await readdir(this.resultsDir).catch(() => [] as string[]);
    const attachments: CachedAttachment[] = [];
    const problems: string[] = [];
    for (const name of names.sort()) {
      if (name.startsWith(".")) continue; // a temporary file of a write in progress
      if (containerId !== undefined && !name.includes(`-${containerId}-`)) continue;
      const path = join(this.resultsDir, name);
      const text = await readFile(path, "utf8").catch((error: Error) => error);
      const parsed = typeof text === "string" ? parseCacheFile(text, path) : fail(cniError(CNI_ERROR.ioFailure, `cannot read ${path}: ${text.message}`));
      if (!parsed.ok) problems.push(parsed.error.msg);
      else if (parsed.value !== undefined && (containerId === undefined || parsed.value.containerId === containerId)) attachments.push(parsed.value);
    }
    return { attachments, problems };
  }
}

function parseCacheFile(text: string, path: string): Result<CachedAttachment, CniError> {
  const bad = (why: string): Result<CachedAttachment, CniError> => fail(cniError(CNI_ERROR.decodingFailure, `the result cache file ${path} is unreadable: ${why}`));
  const decoded = decodeJson(text);
  if (!decoded.ok) return bad(`not JSON (${decoded.error})`);
  const parsed = CacheFileSchema.safeParse(decoded.value);
  if (!parsed.success) return bad(problemsFromZod(parsed.error, "").map(formatProblem).join("; "));
  const data = parsed.data;
  let result: CniResult | undefined;
  if (data.result) {
    const read = parseResult(data.result, "result");
    if (!read.ok) return bad(read.error.map(formatProblem).join("; "));
    result = read.value;
  }
  return ok({
    network: data.networkName,
    containerId: data.containerId,
    ifname: data.ifName,
    config: Buffer.from(data.config, "base64").toString(),
    ...(data.netns ? { netns: data.netns } : {}),
    ...(data.cniArgs ? { cniArgs: data.cniArgs } : {}),
    ...(data.capabilityArgs ? { capabilityArgs: data.capabilityArgs } : {}),
    ...(result !== undefined && { result }),
  });
}
