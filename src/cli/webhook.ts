// `nadguard webhook`: serves admission from a state directory that is reloaded on change.
// With no certificate given, a development CA and serving certificate are made (or reused) under
// certs/generated/ and the CA bundle is printed, so that `npm start` works on a fresh machine.
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDevCertificates } from "../../certs/dev-certificates.js";
import { startWebhook } from "../../webhook/start.js";
import type { AdmissionEnv } from "../admission/decision.js";
import { review } from "../admission/review.js";
import { stateDirSource } from "../cluster/cluster-state.js";
import { loadConfig } from "../config/config.js";
import { envFor, reportStateProblems } from "./env.js";
import { UsageError, parseListen } from "./io.js";

export interface WebhookCommandOptions {
  state: string;
  config?: string | undefined;
  listen: string;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  certsDir?: string | undefined;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  logLevel: string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEFAULT_CERTS_DIR = join(PACKAGE_ROOT, "certs", "generated");

export async function runWebhook(options: WebhookCommandOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const { host, port } = parseListen(options.listen);
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new UsageError("--tls-cert and --tls-key go together");
  if (!LOG_LEVELS.includes(options.logLevel)) throw new UsageError(`--log-level ${options.logLevel}: expected one of ${LOG_LEVELS.join(", ")}`);
  const config = await loadConfig(options.config);

  let env: AdmissionEnv | undefined;
  const state = stateDirSource(options.state, { onError: (error) => err(`state: ${error.message}`) });
  state.subscribe((snapshot) => {
    reportStateProblems(snapshot, err);
    env = envFor(snapshot, config);
  });
  await state.start();

  const dev = options.tlsCert && options.tlsKey ? undefined : await devCertificates(options, host, out);
  const tls = dev ?? { certFile: options.tlsCert!, keyFile: options.tlsKey! };
  const current = (): AdmissionEnv => {
    if (!env) throw new Error("no cluster state loaded yet");
    return env;
  };
  const server = await startWebhook({
    host,
    port,
    tls,
    handleSignals: true,
    logger: { level: options.logLevel },
    isReady: () => state.ready(),
    mutate: (request) => review(request, current(), "mutate"),
    validate: (request) => review(request, current(), "validate"),
  });
  out(`nadguard webhook listening on https://${server.address.replace(/^https?:\/\//, "")} (state ${options.state})`);
  if (dev) {
    const curlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
    const example = relative(process.cwd(), join(PACKAGE_ROOT, "examples", "reviews", "pod-tenant-a-allowed.json"));
    out(`try: curl --cacert ${dev.caPath} -H 'Content-Type: application/json' --data @${example} https://${curlHost}:${server.port}/mutate`);
  }
  await server.closed;
  await state.stop();
  return 0;
}

async function devCertificates(options: WebhookCommandOptions, host: string, out: (line: string) => void) {
  const dir = options.certsDir ?? DEFAULT_CERTS_DIR;
  const ipAddresses = ["127.0.0.1", "::1", ...(host !== "0.0.0.0" && host !== "::" && /^[\d.:a-f]+$/i.test(host) ? [host] : [])];
  const certs = await ensureDevCertificates(dir, { dnsNames: ["localhost", "nadguard-webhook.nadguard.svc"], ipAddresses });
  const caPath = relative(process.cwd(), certs.caFile) || certs.caFile;
  out(`${certs.generated ? "generated" : "reusing"} a development CA and serving certificate in ${dir}`);
  out(`CA bundle (caBundle, base64): ${Buffer.from(certs.caBundle).toString("base64")}`);
  return { certFile: certs.certFile, keyFile: certs.keyFile, caPath };
}
