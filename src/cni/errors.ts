// CNI errors as values (CNI spec 1.0.0, section "Error"): what a plugin prints on stdout when it
// exits non-zero, and what nadguard answers the runtime with when running a plugin fails on its
// side (binary missing, time limit, unreadable output). The wire object is `code`, `msg`,
// `details`, `cniVersion`; the rest of `CniError` says which plugin and command it came from, so a
// message can name them without parsing text.
import { z } from "zod";

/** The well-known codes (spec "Well-known Error Codes"; 50, 51 and 999 from libcni pkg/types). */
export const CNI_ERROR = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodingFailure: 6,
  invalidNetworkConfig: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  limitedConnectivity: 51,
  /** nadguard's own (the spec leaves codes from 100 to the plugin): the pod may not use a network it asks for. */
  denied: 100,
  internal: 999,
} as const;

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC";

/** The error object on a plugin's stdout. Unknown keys are ignored, as Go's decoder does. */
export const CniErrorWireSchema = z.object({
  cniVersion: z.string().optional(),
  code: z.number().int().nonnegative(),
  msg: z.string(),
  details: z.string().optional(),
});

export type CniErrorWire = z.infer<typeof CniErrorWireSchema>;

export interface CniError extends CniErrorWire {
  /** The plugin type that failed (`bridge`), when a plugin was involved. */
  readonly plugin?: string;
  /** The network (conflist name) it ran for. */
  readonly network?: string;
  readonly command?: CniCommand;
}

export function cniError(code: number, msg: string, details?: string): CniError {
  return details === undefined || details === "" ? { code, msg } : { code, msg, details };
}

/** The object to print or send: only the spec's keys. */
export function toWireError(error: CniError, cniVersion?: string): CniErrorWire {
  const version = cniVersion ?? error.cniVersion;
  return {
    ...(version !== undefined && { cniVersion: version }),
    code: error.code,
    msg: error.msg,
    ...(error.details !== undefined && error.details !== "" && { details: error.details }),
  };
}

/** `msg; details`, as libcni's types.Error prints it. */
export function errorText(error: CniErrorWire): string {
  return error.details ? `${error.msg}; ${error.details}` : error.msg;
}

/**
 * One line naming where the error came from, in libcni's words so that it reads like what
 * containerd logs: `plugin type="bridge" name="net" failed (add): <msg>; <details>`.
 */
export function formatCniError(error: CniError): string {
  if (error.plugin === undefined) return errorText(error);
  const name = error.network !== undefined ? ` name="${error.network}"` : "";
  const command = error.command !== undefined ? ` (${error.command.toLowerCase()})` : "";
  return `plugin type="${error.plugin}"${name} failed${command}: ${errorText(error)}`;
}
