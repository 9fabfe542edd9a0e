// A client of a container runtime's CRI v1 RuntimeService (containerd's CRI plugin, CRI-O) over its
// unix socket, for the calls kubelet makes around a pod's sandbox: the node harness of the tests
// creates pods through it, as kubelet would, and the enforcer can find the netns of each local pod
// through ListPodSandbox + PodSandboxStatus(verbose). Replies are checked with schemas before use:
// a runtime is an external program, and a reply nadguard cannot read is an error naming the call.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { z } from "zod";
import { CRI_RUNTIME_V1_PROTO } from "./runtime-v1-proto.js";

const StringMap = z.record(z.string(), z.string());

export const PodSandboxMetadata = z.object({
  name: z.string(),
  uid: z.string(),
  namespace: z.string(),
  attempt: z.number().int().nonnegative(),
});
export type PodSandboxMetadata = z.infer<typeof PodSandboxMetadata>;

export const SandboxState = z.enum(["SANDBOX_READY", "SANDBOX_NOTREADY"]);
export type SandboxState = z.infer<typeof SandboxState>;

export type CriProtocol = "TCP" | "UDP" | "SCTP";
export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";

/** The PodSandboxConfig of CRI v1 (the fields this subset declares), in proto-loader's camelCase. */
export interface PodSandboxConfig {
  readonly metadata: PodSandboxMetadata;
  readonly hostname: string;
  readonly logDirectory: string;
  readonly dnsConfig?: { readonly servers: readonly string[]; readonly searches: readonly string[]; readonly options: readonly string[] };
  readonly portMappings: readonly { readonly protocol: CriProtocol; readonly containerPort: number; readonly hostPort: number; readonly hostIp: string }[];
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly linux: {
    readonly cgroupParent: string;
    readonly securityContext: {
      readonly namespaceOptions: { readonly network: NamespaceMode; readonly pid: NamespaceMode; readonly ipc: NamespaceMode };
      readonly privileged: boolean;
    };
    readonly sysctls: Readonly<Record<string, string>>;
  };
}

export const RuntimeVersion = z.object({
  version: z.string(),
  runtimeName: z.string(),
  runtimeVersion: z.string(),
  runtimeApiVersion: z.string(),
});
export type RuntimeVersion = z.infer<typeof RuntimeVersion>;

export const RuntimeCondition = z.object({ type: z.string(), status: z.boolean(), reason: z.string(), message: z.string() });
export type RuntimeCondition = z.infer<typeof RuntimeCondition>;
const StatusResponse = z.object({ status: z.object({ conditions: z.array(RuntimeCondition) }).nullable() });

export const PodSandbox = z.object({
  id: z.string(),
  metadata: PodSandboxMetadata.nullable(),
  state: SandboxState,
  createdAt: z.string(),
  labels: StringMap,
  annotations: StringMap,
});
export type PodSandbox = z.infer<typeof PodSandbox>;
const ListPodSandboxResponse = z.object({ items: z.array(PodSandbox) });

export const PodSandboxStatus = PodSandbox.extend({
  network: z.object({ ip: z.string(), additionalIps: z.array(z.object({ ip: z.string() })) }).nullable(),
});
export type PodSandboxStatus = z.infer<typeof PodSandboxStatus>;
const PodSandboxStatusResponse = z.object({ status: PodSandboxStatus, info: StringMap });

const RunPodSandboxResponse = z.object({ podSandboxId: z.string().min(1) });
const Empty = z.object({});

/**
 * containerd's verbose sandbox info (`info["info"]`, a JSON string): the pause process and the
 * OCI runtime spec, whose network namespace entry holds the netns path the CNI plugins got.
 */
const ContainerdSandboxInfo = z.looseObject({
  pid: z.number().int().nonnegative(),
  runtimeSpec: z.looseObject({
    linux: z.looseObject({
      namespaces: z.array(z.looseObject({ type: z.string(), path: z.string().optional() })),
    }),
  }),
});

/** A sandbox as PodSandboxStatus(verbose) describes it: where its netns is, its pause process. */
export interface SandboxDetails {
  readonly status: PodSandboxStatus;
  /** The netns path the runtime gave the CNI plugins; "" for a sandbox in the node's netns. */
  readonly netnsPath: string;
  /** The pause process (0 once the sandbox is stopped). */
  readonly pid: number;
  readonly info: Readonly<Record<string, string>>;
}

/** A failed CRI call: the call's name, the gRPC status code and the runtime's message. */
export class CriError extends Error {
  constructor(
    readonly call: string,
    readonly code: number,
    readonly details: string,
  ) {
    super(`CRI ${call} failed (${grpc.status[code] ?? code}): ${details}`);
    this.name = "CriError";
  }
}

type Unary = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply: unknown) => void) => void;

let runtimeServiceConstructor: grpc.ServiceClientConstructor | undefined;

/** The RuntimeService subset as grpc-js loads it (a client constructor; `.service` for a server). */
export function runtimeService(): grpc.ServiceClientConstructor {
  if (!runtimeServiceConstructor) {
    const parsed = protobuf.parse(CRI_RUNTIME_V1_PROTO, { keepCase: false });
    const definition = protoLoader.fromJSON(parsed.root.toJSON(), { longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    runtimeServiceConstructor = pkg.runtime.v1.RuntimeService;
  }
  return runtimeServiceConstructor;
}

export interface CriClientOptions {
  /** Deadline of each call, in ms (kubelet's default runtime-request-timeout is 2 minutes). */
  readonly timeoutMs?: number;
}

export class CriClient {
  readonly #client: grpc.Client;
  readonly #timeoutMs: number;

  /** `socket`: the runtime's gRPC unix socket path (containerd: `[grpc] address`). */
  constructor(
    readonly socket: string,
    options: CriClientOptions = {},
  ) {
    const Service = runtimeService();
    this.#client = new Service(`unix://${socket}`, grpc.credentials.createInsecure());
    this.#timeoutMs = options.timeoutMs ?? 120_000;
  }

  #call<T>(method: string, request: unknown, schema: z.ZodType<T>, timeoutMs = this.#timeoutMs): Promise<T> {
    const fn = (this.#client as unknown as Record<string, Unary>)[method]!.bind(this.#client);
    return new Promise((resolve, reject) => {
      fn(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (error, reply) => {
        if (error) {
          reject(new CriError(method, error.code, error.details));
          return;
        }
        const parsed = schema.safeParse(reply);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          reject(new CriError(method, grpc.status.INTERNAL, `unreadable reply at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`));
          return;
        }
        resolve(parsed.data);
      });
    });
  }

  version(): Promise<RuntimeVersion> {
    return this.#call("Version", { version: "v1" }, RuntimeVersion);
  }

  /** The runtime's conditions (`RuntimeReady`, `NetworkReady`), as kubelet reads them. */
  async status(): Promise<RuntimeCondition[]> {
    const reply = await this.#call("Status", { verbose: false }, StatusResponse);
    return reply.status?.conditions ?? [];
  }

  /** Creates and starts a sandbox (this is when the runtime runs CNI ADD); its id. */
  async runPodSandbox(config: PodSandboxConfig, options: { timeoutMs?: number; runtimeHandler?: string } = {}): Promise<string> {
    const reply = await this.#call("RunPodSandbox", { config, runtimeHandler: options.runtimeHandler ?? "" }, RunPodSandboxResponse, options.timeoutMs);
    return reply.podSandboxId;
  }

  /** Stops a sandbox (CNI DEL); idempotent on the runtime's side, as kubelet expects. */
  async stopPodSandbox(id: string, options: { timeoutMs?: number } = {}): Promise<void> {
    await this.#call("StopPodSandbox", { podSandboxId: id }, Empty, options.timeoutMs);
  }

  async removePodSandbox(id: string, options: { timeoutMs?: number } = {}): Promise<void> {
    await this.#call("RemovePodSandbox", { podSandboxId: id }, Empty, options.timeoutMs);
  }

  async listPodSandbox(filter: { id?: string; state?: SandboxState; labelSelector?: Record<string, string> } = {}): Promise<PodSandbox[]> {
    const request = {
      filter: {
        id: filter.id ?? "",
        ...(filter.state ? { state: { state: filter.state } } : {}),
        labelSelector: filter.labelSelector ?? {},
      },
    };
    return (await this.#call("ListPodSandbox", request, ListPodSandboxResponse)).items;
  }

  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    return (await this.#call("PodSandboxStatus", { podSandboxId: id, verbose: false }, PodSandboxStatusResponse)).status;
  }

  /** PodSandboxStatus(verbose): the status plus the netns path and pause process from the runtime's info. */
  async sandboxDetails(id: string): Promise<SandboxDetails> {
    const reply = await this.#call("PodSandboxStatus", { podSandboxId: id, verbose: true }, PodSandboxStatusResponse);
    const { netnsPath, pid } = readSandboxInfo(reply.info);
    return { status: reply.status, netnsPath, pid, info: reply.info };
  }

  close(): void {
    this.#client.close();
  }
}

/**
 * The netns path and pause pid in a verbose PodSandboxStatus' `info` map (containerd's layout:
 * `info["info"]` is JSON with `pid` and `runtimeSpec.linux.namespaces[type=network].path`).
 * Throws naming what is missing, so a runtime with another layout fails loudly.
 */
export function readSandboxInfo(info: Readonly<Record<string, string>>): { netnsPath: string; pid: number } {
  const raw = info["info"];
  if (raw === undefined) throw new Error(`verbose PodSandboxStatus has no "info" entry (keys: ${Object.keys(info).join(", ") || "none"})`);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new Error(`verbose PodSandboxStatus info["info"] is not JSON: ${(error as Error).message}`);
  }
  const parsed = ContainerdSandboxInfo.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`verbose PodSandboxStatus info["info"] at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  const network = parsed.data.runtimeSpec.linux.namespaces.find((ns) => ns.type === "network");
  return { netnsPath: network?.path ?? "", pid: parsed.data.pid };
}
