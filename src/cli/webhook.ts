// `nadguard webhook`: serves admission from a state directory that is reloaded on change, or
// from a Kubernetes cluster (informers, SubjectAccessReview). With no certificate given, a
// development CA and serving certificate are made (or reused) under certs/generated/ and the CA
// bundle is printed, so that `npm start` works on a fresh machine.
// stdout carries the JSON log alone (what a log collector parses); the lines meant for a person
// running it by hand (the CA bundle, a curl line) go to stderr.
import { isIP } from "node:net";
import { isAbsolute, join, relative, resolve } from "node:path";
import { Registry } from "prom-client";
import type { WebhookApp } from "../../webhook/contract.js";
import { type RunningWebhook, checkListenAddress, startWebhook } from "../../webhook/start.js";
import type { AdmissionEnv } from "../admission/decision.js";
import { review } from "../admission/review.js";
import type { AccessReviewer } from "../authz/nad-access.js";
import { type ClusterState, stateDirSource } from "../cluster/cluster-state.js";
import { type Config, loadConfig } from "../config/config.js";
import { envFor, reportStateProblems } from "./env.js";
import type { KubeFlags } from "./kube.js";
import { CommandError, UsageError, checkStateDir, parseListen } from "./io.js";
import { parseLogLevel } from "./log.js";
import { PACKAGE_ROOT } from "./package.js";
import { importKube } from "./kube-import.js";

export interface WebhookCommandOptions {
  /** A state directory; or `kube`, to read the cluster through informers and authorize by SubjectAccessReview. */
  state?: string | undefined;
  kube?: KubeFlags | undefined;
  /** What a failing SubjectAccessReview means: `fail-closed` (deny, the default) or `fail-open`. */
  sarFailurePolicy?: string | undefined;
  config?: string | undefined;
  /** Default: 0.0.0.0:8443 with --tls-cert; 127.0.0.1:8443 with the development certificate, which names only the loopback addresses. */
  listen?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  certsDir?: string | undefined;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  logLevel: string;
  /** Members and elements of one review body, all together; default REVIEW_BODY_LIMITS.maxValues. */
  maxBodyValues?: number | undefined;
}

export const DEFAULT_CERTS_DIR = join(PACKAGE_ROOT, "certs", "generated");

export async function runWebhook(options: WebhookCommandOptions, _out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const listen = options.listen ?? (options.tlsCert ? "0.0.0.0:8443" : "127.0.0.1:8443");
  const { host, port } = parseListen(listen);
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new UsageError("--tls-cert and --tls-key go together");
  parseLogLevel(options.logLevel);
  checkMaxBodyValues(options.maxBodyValues);
  const config = await loadConfig(options.config);
  if (options.state !== undefined) await checkStateDir(options.state);
  // Problems of the cluster state and of authorization go to the JSON log once the server has one.
  let log: WebhookApp["log"] | undefined;
  const warn = (line: string): void => (log ? log.warn(line) : err(line));
  const registry = new Registry();
  const { state, access } = await clusterSource(options, config, registry, warn);
  // Before the certificates: a webhook that cannot listen must leave --certs-dir as it was.
  await checkListenAddress(host, port).catch((error: Error) => {
    throw listenError(listen, error);
  });
  const dev = options.tlsCert && options.tlsKey ? undefined : await devCertificates(options, host, err);
  const tls = dev ?? { certFile: options.tlsCert!, keyFile: options.tlsKey! };

  let env: AdmissionEnv | undefined;
  state.subscribe((snapshot) => {
    reportStateProblems(snapshot, warn);
    // Offline, who may use a NAD is computed from the snapshot's RBAC objects; in a cluster, by SAR.
    env = access ? { snapshot, config, access } : envFor(snapshot, config);
  });
  const current = (): AdmissionEnv => {
    // /readyz keeps kube-apiserver away until then; a review that still arrives is denied, saying why.
    if (!env) throw new Error("nadguard is not ready: the cluster state is still loading");
    return env;
  };
  let server: RunningWebhook;
  try {
    server = await startWebhook({
      host,
      port,
      tls,
      handleSignals: true,
      logger: { level: options.logLevel },
      maxBodyValues: options.maxBodyValues,
      registry,
      isReady: () => state.ready(),
      // The review's context carries its deadline: SubjectAccessReviews still pending then are aborted.
      mutate: (request, deadline) => review(request, current(), "mutate", deadline),
      validate: (request, deadline) => review(request, current(), "validate", deadline),
    });
  } catch (error) {
    throw (error as NodeJS.ErrnoException).syscall === "listen" ? listenError(listen, error as Error) : error;
  }
  log = server.app.log;
  const source = options.kube ? "Kubernetes" : `state ${options.state}`;
  log.info({ address: server.address, source }, "nadguard webhook listening");
  // /readyz says when the first load is done. In a cluster the informers' first lists may take a
  // while, with /healthz answering meanwhile; a state directory is read at once, before the hints.
  if (options.kube) state.start().catch((error: Error) => warn(`state: ${error.message}`));
  else {
    // The directory was readable a moment ago; if following it fails now, stop serving rather than
    // stay up with an open listener and no state.
    await state.start().catch(async (error: unknown) => {
      await server.close();
      throw error;
    });
  }
  if (dev) {
    const curlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
    const example = shown(join(PACKAGE_ROOT, "examples", "reviews", "pod-tenant-a-allowed.json"));
    err(`nadguard webhook listening on ${server.address} (${source})`);
    err(`try: curl --cacert ${dev.caPath} -H 'Content-Type: application/json' --data @${example} https://${curlHost}:${server.port}/mutate`);
  }
  await server.closed;
  await state.stop();
  return 0;
}

/** `--max-body-values`: a whole number of at least 1 (a bad spelling is refused before, by the parser). */
function checkMaxBodyValues(value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) throw new UsageError(`--max-body-values ${value}: expected a whole number of at least 1`);
}

/** One line for a listen failure, naming the address as given. */
function listenError(listen: string, error: Error): CommandError {
  const why: Record<string, string> = {
    EADDRINUSE: "the address is already in use (another process listens there; choose another with --listen HOST:PORT)",
    EADDRNOTAVAIL: "no interface of this machine has that address",
    EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    ENOTFOUND: "the host name does not resolve",
  };
  const code = (error as NodeJS.ErrnoException).code ?? "";
  return new CommandError(`cannot listen on ${listen}: ${why[code] ?? error.message}`);
}

async function clusterSource(
  options: WebhookCommandOptions,
  config: Config,
  registry: Registry,
  err: (line: string) => void,
): Promise<{ state: ClusterState; access?: AccessReviewer }> {
  if (!options.kube) {
    const log = (line: string): void => err(`state: ${line}`);
    return { state: stateDirSource(options.state!, { registry, log, onError: (error) => log(error.message) }) };
  }
  // Loaded only here: importing the Kubernetes client costs about a second of CPU, which
  // `--state` (and `npm start`) should not pay.
  const { kubeStateFor, loadKubeConfig, parseFailurePolicy, sarReviewerFor } = await importKube();
  const kubeConfig = loadKubeConfig(options.kube);
  const failurePolicy = parseFailurePolicy(options.sarFailurePolicy);
  return {
    // Pods only when nads.protectInUse needs to know which pods use a NAD.
    state: kubeStateFor(kubeConfig, { registry, log: err, allPods: config.nads.protectInUse }),
    access: sarReviewerFor(kubeConfig, { failurePolicy, registry, log: err }),
  };
}

async function devCertificates(options: WebhookCommandOptions, host: string, hint: (line: string) => void) {
  const dir = options.certsDir ?? DEFAULT_CERTS_DIR;
  const listenIp = host !== "0.0.0.0" && host !== "::" && isIP(host) !== 0 ? [host] : [];
  const ipAddresses = [...new Set(["127.0.0.1", "::1", ...listenIp])];
  // Loaded only here: node-forge (about 12 MiB of RSS) is for the development certificate alone,
  // not for a webhook started with --tls-cert and --tls-key.
  const { ensureDevCertificates } = await import("../../certs/dev-certificates.js");
  const certs = await ensureDevCertificates(dir, { dnsNames: ["localhost", "nadguard-webhook.nadguard.svc"], ipAddresses });
  hint(certs.generated ? `generated a development CA and serving certificate in ${shown(dir)} (${certs.reason})` : `reusing the development CA and serving certificate in ${shown(dir)}`);
  hint(`CA bundle (caBundle, base64): ${Buffer.from(certs.caBundle).toString("base64")}`);
  return { certFile: certs.certFile, keyFile: certs.keyFile, caPath: shown(certs.caFile) };
}

/** A path as a person in the current directory would type it: relative below it, else absolute. */
function shown(path: string): string {
  const below = relative(process.cwd(), path);
  return below && !below.startsWith("..") && !isAbsolute(below) ? below : resolve(path);
}
