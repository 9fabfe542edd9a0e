// The capability arguments of a meta-plugin call, in and out.
// In: containerd gives the meta-plugin's config a `runtimeConfig` with the capabilities it declares
// (observed with containerd 1.6.20), with Go field names as keys inside the values:
// `HostPort`, `ContainerPort`, `Protocol`, `HostIP`, `IngressRate`…, `Servers`, `Searches`; the CNI
// conventions write them `hostPort`, `ingressRate`, `servers`. Go's decoder matches keys without
// regard to case, so every plugin reads both: nadguard reads them the same way.
// Out: what each delegate gets as capability arguments (libcni then keeps those it declares), as
// Multus does it (multus-cni pkg/types CreateCNIRuntimeConf and mergeCNIRuntimeConfig): the
// runtime's port mappings and bandwidth for every delegate, replaced for a secondary delegate by
// its selection element's own, plus its `ips`, `mac`, `infinibandGUID` and `deviceID` when given.
// The cluster network gets everything the runtime sent, as sent: it is the plugin the runtime
// would have called itself.
import { z } from "zod";
import { type Problem, type Result, atPlace, fail, ok, problemsFromZod } from "../api/errors.js";
import type { Bandwidth, NetworkSelection, PortMapping } from "../networks/selection.js";
import { defined } from "./json.js";

/** containerd's capability for every pod annotation (after admission's mutations). */
export const POD_ANNOTATIONS_CAPABILITY = "io.kubernetes.cri.pod-annotations";

/** The `dns` capability (CNI conventions). */
export interface DnsCapability {
  readonly servers?: readonly string[];
  readonly searches?: readonly string[];
  readonly options?: readonly string[];
}

/** What nadguard reads of the runtime's capability arguments. */
export interface RuntimeCapabilities {
  readonly portMappings?: readonly PortMapping[];
  readonly bandwidth?: Bandwidth;
  readonly dns?: DnsCapability;
  readonly podAnnotations?: Readonly<Record<string, string>>;
}

/** What one secondary delegate asks for beyond the runtime's values: its selection element and its device. */
export type DelegateRequest = Pick<NetworkSelection, "ips" | "mac" | "infinibandGuid" | "portMappings" | "bandwidth"> & { readonly deviceId?: string };

/** An object with its keys lower-cased, so that a schema of lower-case keys reads any spelling. */
const anyCase = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (value) => (typeof value === "object" && value !== null && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toLowerCase(), v])) : value),
    schema,
  );

const Port = z.number().int().min(0).max(65535);
const Rate = z.number().int().nonnegative();
const Strings = z.array(z.string()).nullish();
const PortMappingSchema = anyCase(z.object({ hostport: Port, containerport: Port, protocol: z.string().nullish(), hostip: z.string().nullish() }));
const BandwidthSchema = anyCase(z.object({ ingressrate: Rate.nullish(), ingressburst: Rate.nullish(), egressrate: Rate.nullish(), egressburst: Rate.nullish() }));
const DnsSchema = anyCase(z.object({ servers: Strings, searches: Strings, options: Strings }));
const RuntimeConfigSchema = anyCase(
  z.object({
    portmappings: z.array(PortMappingSchema).nullish(),
    bandwidth: BandwidthSchema.nullish(),
    dns: DnsSchema.nullish(),
    [POD_ANNOTATIONS_CAPABILITY]: z.record(z.string(), z.string()).nullish(),
  }),
);


/** Reads the runtime's `runtimeConfig`; keys in any case; problems name `where` and the path. Absent: nothing. */
export function parseRuntimeCapabilities(runtimeConfig: unknown, where: string): Result<RuntimeCapabilities, Problem[]> {
  if (runtimeConfig === undefined || runtimeConfig === null) return ok({});
  const parsed = RuntimeConfigSchema.safeParse(runtimeConfig);
  if (!parsed.success) return fail(atPlace(problemsFromZod(parsed.error, "", "cni.runtime-config"), where));
  const data = parsed.data;
  return ok(
    defined({
      portMappings: data.portmappings?.map((m) => defined({ hostPort: m.hostport, containerPort: m.containerport, protocol: m.protocol ?? undefined, hostIP: m.hostip ?? undefined })),
      bandwidth: data.bandwidth
        ? defined({ ingressRate: data.bandwidth.ingressrate, ingressBurst: data.bandwidth.ingressburst, egressRate: data.bandwidth.egressrate, egressBurst: data.bandwidth.egressburst })
        : undefined,
      dns: data.dns ? defined({ servers: data.dns.servers, searches: data.dns.searches, options: data.dns.options }) : undefined,
      podAnnotations: data[POD_ANNOTATIONS_CAPABILITY] ?? undefined,
    }),
  );
}

const nonEmpty = <T>(list: readonly T[] | undefined): readonly T[] | undefined => (list !== undefined && list.length > 0 ? list : undefined);

/** The cluster network's capability arguments: the runtime's, untouched. */
export function clusterNetworkCapabilityArgs(runtimeConfig: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  return { ...runtimeConfig };
}

/** A secondary delegate's capability arguments (Multus mergeCNIRuntimeConfig + CreateCNIRuntimeConf). */
export function delegateCapabilityArgs(runtime: RuntimeCapabilities, request: DelegateRequest): Record<string, unknown> {
  return defined({
    portMappings: nonEmpty(request.portMappings ?? runtime.portMappings),
    bandwidth: request.bandwidth ?? runtime.bandwidth,
    ips: nonEmpty(request.ips),
    mac: request.mac || undefined,
    infinibandGUID: request.infinibandGuid || undefined,
    deviceID: request.deviceId || undefined,
  });
}
