// `nadguard webhook`: serves admission from a state directory that is reloaded on change, or
// from a Kubernetes cluster (informers, SubjectAccessReview). With no certificate given, a
// development CA and serving certificate are made (or reused) under certs/generated/ and the CA
// bundle is printed, so that `npm start` works on a fresh machine.
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Registry } from "prom-client";
import { ensureDevCertificates } from "../../certs/dev-certificates.js";
import { startWebhook } from "../../webhook/start.js";
import type { AdmissionEnv } from "../admission/decision.js";
import { review } from "../admission/review.js";
import type { AccessReviewer } from "../authz/nad-access.js";
import { type ClusterState, stateDirSource } from "../cluster/cluster-state.js";
import { type Config, loadConfig } from "../config/config.js";
import { envFor, reportStateProblems } from "./env.js";
import { type KubeFlags, kubeStateFor, loadKubeConfig, parseFailurePolicy, sarReviewerFor } from "./kube.js";
import { UsageError, parseListen } from "./io.js";

export interface WebhookCommandOptions {
  /** A state directory; or `kube`, to read the cluster through informers and authorize by SubjectAccessReview. */
  state?: string | undefined;
  kube?: KubeFlags | undefined;
  /** What a failing SubjectAccessReview means: `fail-closed` (deny, the default) or `fail-open`. */
  sarFailurePolicy?: string | undefined;
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
  const registry = new Registry();
  const { state, access } = clusterSource(options, config, registry, err);
  state.subscribe((snapshot) => {
    reportStateProblems(snapshot, err);
    // Offline, who may use a NAD is computed from the snapshot's RBAC objects; in a cluster, by SAR.
    env = access ? { snapshot, config, access } : envFor(snapshot, config);
  });
  // In a cluster the server listens (and /healthz answers) while the first lists load; /readyz
  // says when they are done. A state directory is read before listening: it is quick.
  const started = options.kube ? undefined : state.start();
  await started;

  const dev = options.tlsCert && options.tlsKey ? undefined : await devCertificates(options, host, out);
  const tls = dev ?? { certFile: options.tlsCert!, keyFile: options.tlsKey! };
  const current = (): AdmissionEnv => {
    // /readyz keeps kube-apiserver away until then; a review that still arrives is denied, saying why.
    if (!env) throw new Error("nadguard is not ready: the cluster state is still loading");
    return env;
  };
  const server = await startWebhook({
    host,
    port,
    tls,
    handleSignals: true,
    logger: { level: options.logLevel },
    registry,
    isReady: () => state.ready(),
    mutate: (request) => review(request, current(), "mutate"),
    validate: (request) => review(request, current(), "validate"),
  });
  out(`nadguard webhook listening on https://${server.address.replace(/^https?:\/\//, "")} (${options.kube ? "Kubernetes" : `state ${options.state}`})`);
  if (!started) state.start().catch((error: Error) => err(`state: ${error.message}`));
  if (dev) {
    const curlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
    const example = relative(process.cwd(), join(PACKAGE_ROOT, "examples", "reviews", "pod-tenant-a-allowed.json"));
    out(`try: curl --cacert ${dev.caPath} -H 'Content-Type: application/json' --data @${example} https://${curlHost}:${server.port}/mutate`);
  }
  await server.closed;
  await state.stop();
  return 0;
}

function clusterSource(
  options: WebhookCommandOptions,
  config: Config,
  registry: Registry,
  err: (line: string) => void,
): { state: ClusterState; access?: AccessReviewer } {
  if (!options.kube) {
    const log = (line: string): void => err(`state: ${line}`);
    return { state: stateDirSource(options.state!, { registry, log, onError: (error) => log(error.message) }) };
  }
  const kubeConfig = loadKubeConfig(options.kube);
  const failurePolicy = parseFailurePolicy(options.sarFailurePolicy);
  return {
    // Pods only when nads.protectInUse needs to know which pods use a NAD.
    state: kubeStateFor(kubeConfig, { registry, log: err, allPods: config.nads.protectInUse }),
    access: sarReviewerFor(kubeConfig, { failurePolicy, registry, log: err }),
  };
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
