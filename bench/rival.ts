// The rival layout: the linear iptables chains multi-networkpolicy-iptables writes into a pod's
// netns (pkg/server/policyrules.go and its tests, k8snetworkplumbingwg/multi-networkpolicy-iptables):
// a common chain with the conntrack accept, one chain per policy that resets a mark, jumps to a
// PORTS chain and a FROM chain and returns when both marks are set, then DROP. The FROM chain holds
// one MARK rule per peer address — MARK does not end the walk, so every new packet visits every
// rule. Each sync re-renders the pod's chains and applies them with one `iptables-restore --noflush`
// (declared chains are flushed and refilled). The same policy as nadguard's: ingress to the server
// on one TCP and one UDP port from the given peers.
import { inNetns, mustInNetns, type RunResult } from "./system.js";

export type IptablesBackend = "nft" | "legacy";

export function restoreCommand(backend: IptablesBackend): string {
  return backend === "nft" ? "iptables-nft-restore" : "iptables-legacy-restore";
}

export function iptablesCommand(backend: IptablesBackend): string {
  return backend === "nft" ? "iptables-nft" : "iptables-legacy";
}

export interface RivalPolicy {
  readonly interface: string;
  /** Peer addresses in chain order (the datapath bench puts the probing client last). */
  readonly peers: readonly string[];
  readonly tcpPort: number;
  readonly udpPort: number;
}

/** The `iptables-restore --noflush` input of one sync of the pod. */
export function rivalRestoreScript(policy: RivalPolicy): string {
  const i = policy.interface;
  const lines = [
    "*filter",
    ":MULTI-INGRESS - [0:0]",
    ":MULTI-INGRESS-COMMON - [0:0]",
    ":MULTI-EGRESS - [0:0]",
    ":MULTI-EGRESS-COMMON - [0:0]",
    ":MULTI-0-INGRESS - [0:0]",
    ":MULTI-0-INGRESS-0-PORTS - [0:0]",
    ":MULTI-0-INGRESS-0-FROM - [0:0]",
    "-A MULTI-INGRESS-COMMON -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A MULTI-INGRESS -j MULTI-INGRESS-COMMON",
    "-A MULTI-EGRESS-COMMON -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A MULTI-EGRESS -j MULTI-EGRESS-COMMON",
    `-A MULTI-INGRESS -m comment --comment "policy:server-ingress net-attach-def:net-system/data" -i ${i} -j MULTI-0-INGRESS`,
    "-A MULTI-INGRESS -m mark --mark 0x30000/0x30000 -j RETURN",
    "-A MULTI-0-INGRESS -j MARK --set-xmark 0x0/0x30000",
    "-A MULTI-0-INGRESS -j MULTI-0-INGRESS-0-PORTS",
    "-A MULTI-0-INGRESS -j MULTI-0-INGRESS-0-FROM",
    "-A MULTI-0-INGRESS -m mark --mark 0x30000/0x30000 -j RETURN",
    "-A MULTI-INGRESS -j DROP",
    `-A MULTI-0-INGRESS-0-PORTS -i ${i} -m tcp -p tcp --dport ${policy.tcpPort} -j MARK --set-xmark 0x10000/0x10000`,
    `-A MULTI-0-INGRESS-0-PORTS -i ${i} -m udp -p udp --dport ${policy.udpPort} -j MARK --set-xmark 0x10000/0x10000`,
  ];
  for (const peer of policy.peers) lines.push(`-A MULTI-0-INGRESS-0-FROM -i ${i} -s ${peer} -j MARK --set-xmark 0x20000/0x20000`);
  lines.push("COMMIT", "");
  return lines.join("\n");
}

/** One sync as the rival applies it. */
export function rivalRestore(netns: string, backend: IptablesBackend, script: string): Promise<RunResult> {
  return inNetns(netns, restoreCommand(backend), ["--noflush"], { input: script });
}

/** The first sync plus the hooks the rival ensures once per interface (`-I INPUT -i IF -j MULTI-INGRESS`, OUTPUT likewise). */
export async function rivalInstall(netns: string, backend: IptablesBackend, policy: RivalPolicy): Promise<void> {
  const restored = await rivalRestore(netns, backend, rivalRestoreScript(policy));
  if (restored.code !== 0) throw new Error(`[${netns}] ${restoreCommand(backend)} failed: ${restored.stderr.trim().slice(0, 500)}`);
  await mustInNetns(netns, iptablesCommand(backend), ["-w", "-I", "INPUT", "1", "-i", policy.interface, "-j", "MULTI-INGRESS"]);
  await mustInNetns(netns, iptablesCommand(backend), ["-w", "-I", "OUTPUT", "1", "-o", policy.interface, "-j", "MULTI-EGRESS"]);
}
