// The attach plan: which delegates a sandbox gets, in which order, on which interface, with which
// config and capability arguments, as Multus builds its delegate list (multus-cni pkg/k8sclient
// GetDefaultNetworks / GetPodNetwork, pkg/types LoadDelegateNetConf, CheckGatewayConfig):
// - the cluster network first, on the runtime's CNI_IFNAME, with the runtime's capability
//   arguments as sent;
// - then `defaultNetworks`, then each element of the pod's selection annotation; a delegate at
//   position idx (cluster network = 0) is `net<idx>` unless its element names the interface;
// - a NAD with a device-plugin resource gets the pod's next device of it (checkpoint.ts), also
//   written into its config as `deviceID` and `pciBusID` (the first plugin of a list);
// - an element's `cni-args` are merged into the config's `args.cni` (every plugin of a list);
// - `default-route`: at most one gateway per IP family across the pod (no ECMP); when an element
//   asks for one, every delegate's default routes are filtered except the families its own
//   element asks for (gatewayFilters), and the asked gateway set afterwards (routes.ts).
// Which NADs a pod may use, and resolving names to NADs, happen before: the plan takes their
// configs as given. Pure: no I/O.
import type { Problem, Result } from "../api/errors.js";
import { fail, ok } from "../api/errors.js";
import { parseIp } from "../networks/addresses.js";
import type { NetworkSelection } from "../networks/selection.js";
import type { PlannedDelegate } from "./attach.js";
import { type JsonObject, decodeConfigObject, parseNetworkConfig } from "./config.js";
import { type RuntimeCapabilities, clusterNetworkCapabilityArgs, delegateCapabilityArgs } from "./runtime-config.js";

/** A network's CNI config and where it came from. */
export interface NetworkSource {
  /** `namespace/nad`, or the cluster network's conf name. */
  readonly name: string;
  /** The CNI config: JSON text or a decoded object. */
  readonly config: string | JsonObject;
  /** Where the config is, for messages: `NetworkAttachmentDefinition nets/blue spec.config`, a file path. */
  readonly where: string;
  /** The NAD's `k8s.v1.cni.cncf.io/resourceName`. */
  readonly resourceName?: string;
}

export interface PlanInput {
  /** The runtime's CNI_IFNAME. */
  readonly ifname: string;
  readonly clusterNetwork: NetworkSource;
  /** `defaultNetworks`, already left out for pods in `systemNamespaces`. */
  readonly defaultNetworks: readonly NetworkSource[];
  /** The pod's selection elements with their NADs' configs, in annotation order. */
  readonly selections: readonly { readonly selection: NetworkSelection; readonly network: NetworkSource }[];
  /** The runtime's capability arguments as sent (the cluster network gets them so)… */
  readonly runtimeConfig?: Readonly<Record<string, unknown>>;
  /** …and as read (port mappings and bandwidth for the other delegates). */
  readonly runtime: RuntimeCapabilities;
  /** The pod's next device of a resource (checkpoint.ts deviceAssigner). */
  readonly nextDevice: (resourceName: string) => string | undefined;
}

/** Which default routes to drop from a delegate's interface after its ADD, and which gateways to set. */
export interface GatewayFilter {
  readonly ifname: string;
  readonly filterV4: boolean;
  readonly filterV6: boolean;
  readonly gateways: readonly string[];
}

const isV4 = (ip: string): boolean => {
  const parsed = parseIp(ip);
  return parsed?.family === 4 || (parsed !== undefined && parsed.value >> 32n === 0xffffn);
};

/** `deviceID` and `pciBusID` in the config, or in its first plugin (Multus delegateAddDeviceID, addDeviceIDInConfList). */
function withDevice(config: JsonObject, deviceId: string): JsonObject {
  const plugins = config.plugins;
  if (!Array.isArray(plugins)) return { ...config, deviceID: deviceId, pciBusID: deviceId };
  return { ...config, plugins: plugins.map((plugin, i) => (i === 0 ? { ...(plugin as JsonObject), deviceID: deviceId, pciBusID: deviceId } : plugin)) };
}

/** The element's cni-args merged into `args.cni` of the config, or of each plugin of a list. */
function withCniArgs(config: JsonObject, cniArgs: Readonly<Record<string, unknown>>): JsonObject {
  const merge = (target: JsonObject): JsonObject => {
    const args = (typeof target.args === "object" && target.args !== null ? target.args : {}) as JsonObject;
    const cni = (typeof args.cni === "object" && args.cni !== null ? args.cni : {}) as JsonObject;
    return { ...target, args: { ...args, cni: { ...cni, ...cniArgs } } };
  };
  const plugins = config.plugins;
  return Array.isArray(plugins) ? { ...config, plugins: plugins.map((plugin) => merge(plugin as JsonObject)) } : merge(config);
}

const decode = (source: NetworkSource): Result<JsonObject, Problem[]> => decodeConfigObject(source.config, source.where);

/** The delegates of a sandbox; every problem found, each naming the config or element it is in. */
export function planDelegates(input: PlanInput): Result<PlannedDelegate[], Problem[]> {
  const problems: Problem[] = [];
  const delegates: PlannedDelegate[] = [];
  const add = (source: NetworkSource, raw: JsonObject, delegate: Omit<PlannedDelegate, "config" | "name">): void => {
    const config = parseNetworkConfig(raw, source.where);
    if (!config.ok) problems.push(...config.error);
    else delegates.push({ name: source.name, config: config.value, ...delegate });
  };

  const cluster = decode(input.clusterNetwork);
  if (!cluster.ok) problems.push(...cluster.error);
  else add(input.clusterNetwork, cluster.value, { ifname: input.ifname, clusterNetwork: true, capabilityArgs: clusterNetworkCapabilityArgs(input.runtimeConfig) });

  const device = (source: NetworkSource, where: string): { deviceId?: string; resourceName?: string } | undefined => {
    if (source.resourceName === undefined) return {};
    const id = input.nextDevice(source.resourceName);
    if (id !== undefined) return { deviceId: id, resourceName: source.resourceName };
    problems.push({
      code: "cni.no-device",
      path: where,
      message: `network ${source.name} needs a device of resource ${source.resourceName}, and the kubelet gave the pod none left (its resource requests must count one per network of that resource)`,
    });
    return undefined;
  };

  input.defaultNetworks.forEach((source, i) => {
    const decoded = decode(source);
    if (!decoded.ok) return void problems.push(...decoded.error);
    const dev = device(source, source.where);
    if (dev === undefined) return;
    const raw = dev.deviceId !== undefined ? withDevice(decoded.value, dev.deviceId) : decoded.value;
    add(source, raw, { ifname: `net${i + 1}`, clusterNetwork: false, capabilityArgs: delegateCapabilityArgs(input.runtime, { deviceId: dev.deviceId }), ...dev });
  });

  const first = 1 + input.defaultNetworks.length;
  for (const { selection, network } of input.selections) {
    const decoded = decode(network);
    if (!decoded.ok) {
      problems.push(...decoded.error);
      continue;
    }
    const dev = device(network, `${network.where} (element ${selection.index + 1}, "${selection.written}")`);
    if (dev === undefined) continue;
    let raw = dev.deviceId !== undefined ? withDevice(decoded.value, dev.deviceId) : decoded.value;
    if (selection.cniArgs !== undefined) raw = withCniArgs(raw, selection.cniArgs);
    add(network, raw, {
      ifname: selection.interfaceRequest ?? `net${first + selection.index}`,
      clusterNetwork: false,
      element: selection.written,
      capabilityArgs: delegateCapabilityArgs(input.runtime, { ...selection, ...(dev.deviceId !== undefined && { deviceId: dev.deviceId }) }),
      ...(selection.mac !== undefined && { macRequest: selection.mac }),
      ...(selection.ips !== undefined && { ipRequest: selection.ips }),
      ...(selection.infinibandGuid !== undefined && { infinibandGuidRequest: selection.infinibandGuid }),
      ...(selection.defaultRoute !== undefined && { defaultRoute: selection.defaultRoute }),
      ...dev,
    });
  }

  const seen = new Map<string, PlannedDelegate>();
  for (const delegate of delegates) {
    const other = seen.get(delegate.ifname);
    if (other !== undefined) {
      problems.push({
        code: "cni.duplicate-interface",
        path: delegate.element ?? delegate.name,
        message: `interface ${delegate.ifname} of network ${delegate.name} is already ${other.name}'s; name the interface of one of them (name@ifname or "interface")`,
      });
    }
    seen.set(delegate.ifname, delegate);
  }
  const gateways = gatewayFilters(delegates);
  if (!gateways.ok) problems.push(...gateways.error);
  return problems.length > 0 ? fail(problems) : ok(delegates);
}

/**
 * Multus CheckGatewayConfig: nothing when no element asks for a default route; else, per
 * delegate, which families' default routes to drop (all but those its own element asks for) and
 * the gateways to set. More than one gateway of a family across the pod is refused.
 */
export function gatewayFilters(delegates: readonly PlannedDelegate[]): Result<GatewayFilter[], Problem[]> {
  const asked = delegates.filter((d) => d.defaultRoute !== undefined && d.defaultRoute.length > 0);
  if (asked.length === 0) return ok([]);
  const all = asked.flatMap((d) => d.defaultRoute!.map((gw) => ({ gw, delegate: d })));
  for (const [family, test] of [
    ["IPv4", isV4],
    ["IPv6", (ip: string) => !isV4(ip)],
  ] as const) {
    const of = all.filter((g) => test(g.gw));
    if (of.length > 1) {
      return fail([
        {
          code: "cni.default-route-ecmp",
          path: of.map((g) => g.delegate.element ?? g.delegate.name).join(", "),
          message: `asks for ${of.length} ${family} default gateways (${of.map((g) => g.gw).join(", ")}); a pod gets at most one per family`,
        },
      ]);
    }
  }
  return ok(
    delegates.map((d) => {
      const own = d.defaultRoute ?? [];
      return { ifname: d.ifname, filterV4: !own.some(isV4), filterV6: !own.some((gw) => !isV4(gw)), gateways: own };
    }),
  );
}
