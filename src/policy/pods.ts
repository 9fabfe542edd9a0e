// Pods as the policy engine sees them: labels, node, whether they count as peers, their
// attachments (from network-status: NAD → interface and addresses) and their named container
// ports. Read once per pod object (snapshots are immutable, so a WeakMap on the object is safe).
import type { Problem } from "../api/errors.js";
import { ANNOTATION_NETWORK_STATUS, type Pod, annotationsOf, labelsOf, objectKey } from "../api/objects.js";
import { type Family, parseIp } from "../networks/addresses.js";
import { parseNetworkStatus } from "../networks/network-status.js";
import { type AddrRange, type L4Protocol, hostRange } from "./ranges.js";
import type { Labels } from "./selector.js";

export interface Address {
  readonly family: Family;
  readonly value: bigint;
  readonly text: string;
}

export interface Attachment {
  /** `ns/name` of the NAD, as network-status names it. */
  readonly network: string;
  /** The interface inside the pod; absent when Multus did not say. */
  readonly interface?: string;
  readonly addresses: readonly Address[];
  /** The addresses as host ranges, for peer address sets. */
  readonly ranges: readonly AddrRange[];
}

export interface PodInfo {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly node: string | undefined;
  /** Running, not hostNetwork: its addresses count as peers. */
  readonly peerEligible: boolean;
  readonly hostNetwork: boolean;
  /** Non-default network-status entries by NAD. */
  readonly attachments: ReadonlyMap<string, Attachment>;
  /** `name/PROTOCOL` → port number, from every container's ports. */
  readonly namedPorts: ReadonlyMap<string, number>;
  readonly problems: readonly Problem[];
}

const cache = new WeakMap<Pod, PodInfo>();

export function namedPortKey(name: string, protocol: L4Protocol): string {
  return `${name}/${protocol}`;
}

export function podInfo(pod: Pod): PodInfo {
  let info = cache.get(pod);
  if (!info) {
    info = readPod(pod);
    cache.set(pod, info);
  }
  return info;
}

function readAttachments(pod: Pod, key: string, problems: Problem[]): Map<string, Attachment> {
  const attachments = new Map<string, Attachment>();
  const status = annotationsOf(pod.metadata)[ANNOTATION_NETWORK_STATUS];
  if (status === undefined) return attachments;
  const parsed = parseNetworkStatus(status);
  if (!parsed.ok) {
    problems.push(...parsed.error.map((p) => ({ ...p, path: `Pod ${key}: ${p.path}` })));
    return attachments;
  }
  for (const entry of parsed.value) {
    if (entry.default || attachments.has(entry.name)) continue;
    const addresses: Address[] = [];
    for (const ip of entry.ips) {
      const parsedIp = parseIp(ip.split("/")[0]!.trim());
      if (parsedIp) addresses.push({ ...parsedIp, text: ip });
      else problems.push({ code: "pod.address", path: `Pod ${key}: network-status ${entry.name}`, message: `"${ip}" is not an IP address; ignored` });
    }
    const ranges = addresses.map((a) => hostRange(a.family, a.value));
    attachments.set(entry.name, { network: entry.name, ...(entry.interface !== undefined && { interface: entry.interface }), addresses, ranges });
  }
  return attachments;
}

function readPod(pod: Pod): PodInfo {
  const namespace = pod.metadata.namespace ?? "default";
  const name = pod.metadata.name ?? "";
  const key = objectKey(namespace, name);
  const problems: Problem[] = [];
  const hostNetwork = pod.spec.hostNetwork === true;
  const attachments = hostNetwork ? new Map<string, Attachment>() : readAttachments(pod, key, problems);
  const namedPorts = new Map<string, number>();
  for (const container of pod.spec.containers) {
    for (const port of container.ports ?? []) {
      if (port.name === undefined || port.name === "") continue;
      const portKey = namedPortKey(port.name, port.protocol ?? "TCP");
      if (!namedPorts.has(portKey)) namedPorts.set(portKey, port.containerPort);
    }
  }
  return {
    key,
    namespace,
    name,
    labels: labelsOf(pod.metadata),
    node: pod.spec.nodeName,
    peerEligible: !hostNetwork && pod.status?.phase === "Running",
    hostNetwork,
    attachments,
    namedPorts,
    problems,
  };
}
