// The `nadguard` command's dispatcher (the entry point is main.ts). Each subcommand parses its flags here and runs in its own module;
// exit codes as README gives them: 0 success/allowed, 3 denied, 2 usage or bad input, 1 otherwise.
import { InputError } from "../api/errors.js";
import { type Options, UnknownArgumentError, type Values, nearest, parseCommandArgs } from "./args.js";
import { helpPage } from "./help.js";
import { runAdmit } from "./admit.js";
import { runStatus } from "./status.js";
import type { KubeFlags } from "./kube.js";
import { CERTS_OPTIONS, CERTS_SUMMARY, CERTS_USAGE, certsOptionsFromValues, runCerts } from "./certs.js";
import { runRender } from "./render.js";
import { runVerdict } from "./verdict.js";
import { runMatrix } from "./matrix.js";
import { runLint } from "./lint.js";
import { CommandError, EXIT, UsageError } from "./io.js";
import { PACKAGE_VERSION } from "./package.js";

interface Command {
  summary: string;
  usage: string;
  options: Options;
  /** Only commands that take a FILE accept positional arguments. */
  positionals?: boolean;
  run(values: Values, positionals: string[]): Promise<number>;
}

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

const str = (values: Values, key: string): string | undefined => values[key] as string | undefined;
const required = (values: Values, key: string): string => {
  const value = str(values, key);
  if (!value) throw new UsageError(`--${key} is required`);
  return value;
};

const KUBE_OPTIONS: Command["options"] = {
  kube: { type: "boolean" },
  kubeconfig: { type: "string" },
  "in-cluster": { type: "boolean" },
  context: { type: "string" },
};

/**
 * Where cluster objects come from: `--state DIR`, or Kubernetes when any of `--kube`,
 * `--kubeconfig`, `--in-cluster`, `--context` is given (exactly one source).
 */
function stateSource(values: Values): { state?: string; kube?: KubeFlags } {
  const kube = Boolean(values.kube || values.kubeconfig || values["in-cluster"] || values.context);
  const state = str(values, "state");
  if (kube && state) throw new UsageError("give either --state DIR or Kubernetes (--kube, --kubeconfig, --in-cluster, --context), not both");
  if (!kube && !state) throw new UsageError("--state is required (or --kube to read a Kubernetes cluster)");
  if (!kube) return { state: state! };
  return {
    kube: { kubeconfig: str(values, "kubeconfig"), inCluster: values["in-cluster"] === true, context: str(values, "context") },
  };
}

/** `--output`: `human` (the default) or `json`. */
function outputFormat(values: Values): "human" | "json" {
  const output = str(values, "output");
  if (output !== "human" && output !== "json") throw new UsageError(`--output ${output}: expected json or human`);
  return output;
}

function integer(values: Values, key: string): number | undefined {
  const value = str(values, key);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${key} ${value}: expected a whole number`);
  return Number(value);
}

/** What-if flags of `verdict` and `matrix`. */
const WHAT_IF_OPTIONS: Command["options"] = {
  with: { type: "string", multiple: true, default: [] },
  without: { type: "string", multiple: true, default: [] },
  diff: { type: "boolean" },
};

function whatIf(values: Values): { with: string[]; without: string[]; diff: boolean } {
  return { with: values.with as string[], without: values.without as string[], diff: values.diff === true };
}

export const COMMANDS: Record<string, Command> = {
  webhook: {
    summary: "serve the admission webhook (POST /mutate, /validate; GET /healthz, /readyz, /metrics)",
    usage:
      "nadguard webhook (--state DIR | --kube [--kubeconfig FILE | --in-cluster] [--context NAME]) [--config FILE] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--certs-dir DIR] [--log-level LEVEL] [--sar-failure-policy fail-closed|fail-open] [--max-body-values N]",
    options: {
      state: { type: "string" },
      ...KUBE_OPTIONS,
      "sar-failure-policy": { type: "string" },
      config: { type: "string" },
      listen: { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "certs-dir": { type: "string" },
      "log-level": { type: "string", default: "info" },
      "max-body-values": { type: "string" },
    },
    // webhook and enforce load the Kubernetes client (~1 s); the one-shot commands should not wait for it.
    run: async (values) =>
      (await import("./webhook.js")).runWebhook(
        {
          ...stateSource(values),
          sarFailurePolicy: str(values, "sar-failure-policy"),
          config: str(values, "config"),
          listen: str(values, "listen"),
          tlsCert: str(values, "tls-cert"),
          tlsKey: str(values, "tls-key"),
          certsDir: str(values, "certs-dir"),
          logLevel: str(values, "log-level")!,
          maxBodyValues: integer(values, "max-body-values"),
        },
        out,
        err,
      ),
  },
  admit: {
    summary: "decide every object of a manifest file (or AdmissionReviews) as the webhook would",
    usage:
      "nadguard admit FILE (--state DIR | --kube [--kubeconfig FILE | --in-cluster] [--context NAME]) [--config FILE] [--as USER] [--as-group GROUP]... [--output json]",
    options: {
      state: { type: "string" },
      ...KUBE_OPTIONS,
      config: { type: "string" },
      as: { type: "string" },
      "as-group": { type: "string", multiple: true, default: [] },
      output: { type: "string", default: "human" },
    },
    positionals: true,
    run: (values, positionals) => {
      if (positionals.length !== 1) throw new UsageError("admit takes exactly one FILE (a path, or - for standard input)");
      const output = outputFormat(values);
      return runAdmit(
        {
          file: positionals[0]!,
          ...stateSource(values),
          config: str(values, "config"),
          as: str(values, "as"),
          asGroups: values["as-group"] as string[],
          output,
        },
        out,
        err,
      );
    },
  },
  render: {
    summary: "print the nft script nadguard applies in a pod's network namespace",
    usage: "nadguard render --state DIR --pod NS/NAME [--config FILE] [--accept-icmp-echo]",
    options: {
      state: { type: "string" },
      pod: { type: "string" },
      config: { type: "string" },
      "accept-icmp-echo": { type: "boolean" },
    },
    run: (values) =>
      runRender(
        {
          state: required(values, "state"),
          pod: required(values, "pod"),
          config: str(values, "config"),
          ...(values["accept-icmp-echo"] !== undefined && { acceptIcmpEcho: values["accept-icmp-echo"] as boolean }),
        },
        out,
        err,
      ),
  },
  verdict: {
    summary: "is a connection between two pods on a network allowed, and which policies decide it",
    usage:
      "nadguard verdict --state DIR --from NS/POD --to NS/POD --network NS/NAD --port PORT[/PROTO] [--config FILE] [--with FILE]... [--without KIND/NS/NAME]... [--diff] [--output json]",
    options: {
      state: { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      network: { type: "string" },
      port: { type: "string" },
      config: { type: "string" },
      ...WHAT_IF_OPTIONS,
      output: { type: "string", default: "human" },
    },
    run: (values) => {
      const output = outputFormat(values);
      return runVerdict(
        {
          state: required(values, "state"),
          from: required(values, "from"),
          to: required(values, "to"),
          network: required(values, "network"),
          port: required(values, "port"),
          config: str(values, "config"),
          ...whatIf(values),
          output,
        },
        out,
        err,
      );
    },
  },
  matrix: {
    summary: "who can reach whom on a network: every pod pair, per port and address family",
    usage:
      "nadguard matrix --state DIR --network NS/NAD [--port PORT[/PROTO]]... [--namespace NS]... [--selector LABELS] [--config FILE] [--with FILE]... [--without KIND/NS/NAME]... [--diff] [--output table|json|markdown]",
    options: {
      state: { type: "string" },
      network: { type: "string" },
      port: { type: "string", multiple: true, default: [] },
      namespace: { type: "string", multiple: true, default: [] },
      selector: { type: "string" },
      config: { type: "string" },
      ...WHAT_IF_OPTIONS,
      output: { type: "string", default: "table" },
    },
    run: (values) => {
      const output = str(values, "output");
      if (output !== "table" && output !== "json" && output !== "markdown") throw new UsageError(`--output ${output}: expected table, json or markdown`);
      return runMatrix(
        {
          state: required(values, "state"),
          network: required(values, "network"),
          ports: values.port as string[],
          namespaces: values.namespace as string[],
          selector: str(values, "selector"),
          config: str(values, "config"),
          ...whatIf(values),
          output,
        },
        out,
        err,
      );
    },
  },
  lint: {
    summary: "find policies that silently do nothing, or less than they read",
    usage: "nadguard lint (--state DIR | DIR) [--config FILE] [--output text|json]",
    options: { state: { type: "string" }, config: { type: "string" }, output: { type: "string", default: "text" } },
    positionals: true,
    run: (values, positionals) => {
      const output = str(values, "output");
      if (output !== "text" && output !== "json") throw new UsageError(`--output ${output}: expected text or json`);
      if (positionals.length > 1 || (positionals.length === 1 && str(values, "state") !== undefined)) {
        throw new UsageError("lint takes one state directory: --state DIR or DIR, not both");
      }
      const state = positionals[0] ?? required(values, "state");
      return runLint({ state, config: str(values, "config"), output }, out, err);
    },
  },
  enforce: {
    summary: "keep nadguard's nft table in every local pod's network namespace equal to the policies",
    usage:
      "nadguard enforce (--state DIR | --kube [--kubeconfig FILE | --in-cluster] [--context NAME]) --node NAME [--netns TEMPLATE|proc|cri:SOCKET] [--config FILE] [--once] [--metrics-listen HOST:PORT] [--parallelism N] [--min-interval MS] [--max-interval MS] [--remove-on-exit] [--cleanup] [--log-level LEVEL]",
    options: {
      state: { type: "string" },
      ...KUBE_OPTIONS,
      node: { type: "string" },
      netns: { type: "string" },
      config: { type: "string" },
      once: { type: "boolean" },
      "metrics-listen": { type: "string" },
      parallelism: { type: "string" },
      "min-interval": { type: "string" },
      "max-interval": { type: "string" },
      "remove-on-exit": { type: "boolean" },
      cleanup: { type: "boolean" },
      "log-level": { type: "string", default: "info" },
    },
    run: async (values) =>
      (await import("./enforce.js")).runEnforce(
        {
          ...stateSource(values),
          node: required(values, "node"),
          netns: str(values, "netns"),
          config: str(values, "config"),
          once: values.once === true,
          metricsListen: str(values, "metrics-listen"),
          parallelism: integer(values, "parallelism"),
          minIntervalMs: integer(values, "min-interval"),
          maxIntervalMs: integer(values, "max-interval"),
          removeOnExit: values["remove-on-exit"] === true,
          cleanup: values.cleanup === true,
          logLevel: str(values, "log-level"),
        },
        out,
        err,
      ),
  },
  node: {
    summary: "serve the CNI meta-plugin on this node (the nadguard-cni shim's daemon) and enforce its pods' policies",
    usage:
      "nadguard node (--state DIR | --kube [--kubeconfig FILE | --in-cluster]) --node NAME [--daemon-config FILE] [--config FILE] [--metrics-listen HOST:PORT] [--uninstall] [--log-level LEVEL]",
    options: {
      state: { type: "string" },
      ...KUBE_OPTIONS,
      node: { type: "string" },
      "daemon-config": { type: "string" },
      config: { type: "string" },
      "metrics-listen": { type: "string" },
      uninstall: { type: "boolean" },
      "log-level": { type: "string", default: "info" },
    },
    run: async (values) => {
      const uninstall = values.uninstall === true;
      // --uninstall needs no cluster: it removes files from this node.
      const source = uninstall && !values.state && !values.kube && !values.kubeconfig && !values["in-cluster"] && !values.context ? {} : stateSource(values);
      return (await import("./node.js")).runNode(
        {
          ...source,
          node: uninstall ? str(values, "node") : required(values, "node"),
          daemonConfig: str(values, "daemon-config"),
          config: str(values, "config"),
          metricsListen: str(values, "metrics-listen"),
          uninstall,
          logLevel: str(values, "log-level"),
        },
        out,
        err,
      );
    },
  },
  status: {
    summary: "print what nadguard owns in a network namespace",
    usage: "nadguard status --netns PATH|NAME [--output json]",
    options: { netns: { type: "string" }, output: { type: "string", default: "human" } },
    run: (values) => {
      const output = outputFormat(values);
      return runStatus({ netns: required(values, "netns"), output }, out, err);
    },
  },
  certs: {
    summary: CERTS_SUMMARY,
    usage: CERTS_USAGE,
    options: CERTS_OPTIONS,
    run: (values) => runCerts(certsOptionsFromValues(values), out, err),
  },
};

function help(): string {
  const lines = ["usage: nadguard COMMAND [options]", "", "commands:"];
  for (const [name, command] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(9)} ${command.summary}`);
  lines.push(
    "",
    "Run `nadguard COMMAND --help` for a command's options, exit codes and an example; `nadguard --version` for the version.",
    "Exit codes: 0 success/allowed, 3 denied, 2 usage or bad input, 1 other failure.",
  );
  return lines.join("\n");
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    out(help());
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === "--version") {
    out(PACKAGE_VERSION);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    const hint = nearest(name, Object.keys(COMMANDS));
    const what = name.startsWith("-") ? "option" : "command";
    err(`nadguard: unknown ${what} ${name}${hint ? `; did you mean ${hint}?` : ""}\n\n${help()}`);
    return EXIT.usage;
  }
  try {
    if (rest.includes("--help") || rest.includes("-h")) {
      out(await helpPage(name, command.usage));
      return EXIT.ok;
    }
    const { values, positionals } = parseCommandArgs(name, rest, command.options, command.positionals === true);
    return await command.run(values, positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`${error instanceof UnknownArgumentError ? "nadguard" : `nadguard ${name}`}: ${error.message}\nusage: ${command.usage}`);
      return EXIT.usage;
    }
    if (error instanceof CommandError) {
      err(`nadguard ${name}: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof InputError) {
      err(`nadguard ${name}: bad input:\n${error.message}`);
      return EXIT.usage;
    }
    err(`nadguard ${name}: ${(error as Error).stack ?? String(error)}`);
    return EXIT.failure;
  }
}
