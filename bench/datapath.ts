// Benchmark 4 — datapath: what a policy costs per packet. A client netns and one server netns per
// variant hang on a Linux bridge (in a netns of its own): no policy, nadguard's table (the
// compiler's real ruleset), and the rival's linear iptables chains (each backend), all allowing the
// client plus N other peers — the client's rule last in the linear layout (where the MARK walk
// visits every rule anyway). Measured with python3 clients inside the netns: a TCP connect loop
// (each connection's SYN is a new flow that walks the ruleset) and a UDP flood on one socket that
// never gets a reply (conntrack keeps it NEW, so every datagram walks the ruleset).
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { DEFAULT_CONFIG } from "../src/config/config.js";
import { PORTS, loadEngine, netnsUnavailable, rivalBackends } from "./apply.js";
import { type BenchContext, type Section, skipped } from "./report.js";
import { type IptablesBackend, iptablesCommand, rivalInstall } from "./rival.js";
import { type Table, count, ms, pairedRatios, percent, ratio, ratioPair, size, summarize } from "./stats.js";
import { SERVER_KEY, peerAddress, peerSnapshot } from "./synthetic.js";
import { addNetns, available, inNetns, mustInNetns, netnsPath, pythonCommand } from "./system.js";

const PROBE = join(dirname(fileURLToPath(import.meta.url)), "probe.py");
const CLIENT = "198.19.255.2";
const OTHER_PORT = 5203;
const UDP_SIZE = 16;

type VariantId = "none" | "nadguard" | IptablesBackend;

interface Variant {
  readonly id: VariantId;
  readonly label: string;
  readonly netns: string;
  readonly address: string;
}

const LABELS: Record<VariantId, string> = { none: "no policy", nadguard: "nadguard (nft sets)", nft: "iptables-linear (nft backend)", legacy: "iptables-linear (legacy)" };

interface TcpRun {
  readonly connections: number;
  readonly errors: number;
  readonly seconds: number;
  readonly p50_us: number;
  readonly p99_us: number;
  readonly p999_us: number;
  readonly user: number;
  readonly system: number;
}

interface UdpRun {
  readonly sent: number;
  readonly errors: number;
  readonly seconds: number;
  readonly user: number;
  readonly system: number;
  /** Datagrams that reached the server's UDP layer (InDatagrams + InErrors), per second. */
  readonly delivered: number;
}

/** Plain nft set layouts for the diagnostic table: what the per-packet cost of a lookup depends on. */
const LAYOUTS = [
  { id: "ifcat", label: "ifname . ipv4 . proto . port, interval (nadguard's layout before the hash sets)", type: "ifname . ipv4_addr . inet_proto . inet_service", interval: true, withIf: true },
  { id: "cat", label: "ipv4 . proto . port, interval (no ifname)", type: "ipv4_addr . inet_proto . inet_service", interval: true, withIf: false },
  { id: "hash", label: "ifname . ipv4 . proto . port, no interval flag (hash: nadguard's peer-host layout)", type: "ifname . ipv4_addr . inet_proto . inet_service", interval: false, withIf: true },
] as const;

function layoutScript(layout: (typeof LAYOUTS)[number], ifname: string, addresses: readonly string[]): string {
  const rule = layout.withIf ? `iifname . ip saddr . meta l4proto . th dport @allow accept` : `ip saddr . meta l4proto . th dport @allow accept`;
  const element = (a: string): string => (layout.withIf ? `"${ifname}" . ${a} . udp . ${PORTS.udp}` : `${a} . udp . ${PORTS.udp}`);
  const lines = [
    "add table inet nadguard",
    "delete table inet nadguard",
    "add table inet nadguard",
    `add set inet nadguard allow { type ${layout.type}; ${layout.interval ? "flags interval; " : ""}}`,
    "add chain inet nadguard ingress { type filter hook input priority filter; policy accept; }",
    "add rule inet nadguard ingress ct state established,related accept",
    `add rule inet nadguard ingress ${rule}`,
    `add rule inet nadguard ingress iifname "${ifname}" drop`,
  ];
  for (let i = 0; i < addresses.length; i += 1000) lines.push(`add element inet nadguard allow { ${addresses.slice(i, i + 1000).map(element).join(", ")} }`);
  return `${lines.join("\n")}\n`;
}

async function probe<T>(netns: string, args: readonly string[], timeoutMs: number): Promise<T> {
  const result = await inNetns(netns, pythonCommand(), [PROBE, ...args], { timeoutMs });
  if (result.code !== 0) throw new Error(`probe ${args.join(" ")} in ${netns} failed (${result.code}): ${result.stderr.trim().slice(0, 500)}`);
  return JSON.parse(result.stdout.trim().split("\n").pop()!) as T;
}

/** Datagrams that reached UDP in a netns (delivered or dropped for a full receive buffer). */
async function udpReceived(netns: string): Promise<number> {
  const snmp = (await mustInNetns(netns, "cat", ["/proc/net/snmp"])).stdout.split("\n").filter((l) => l.startsWith("Udp:"));
  const [names, values] = snmp.map((l) => l.trim().split(/\s+/).slice(1));
  const at = (name: string): number => Number(values?.[names?.indexOf(name) ?? -1] ?? 0);
  return at("InDatagrams") + at("InErrors");
}

async function startServer(ctx: BenchContext, v: Variant): Promise<ChildProcess> {
  const child = ctx.cleanup.track(
    spawn("nsenter", [`--net=${netnsPath(v.netns)}`, pythonCommand(), PROBE, "server", v.address, String(PORTS.tcp), String(PORTS.udp), String(OTHER_PORT)], { stdio: ["ignore", "pipe", "pipe"] }),
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe server in ${v.netns} did not start: ${stderr}`)), 10_000);
    createInterface({ input: child.stdout! }).once("line", () => {
      clearTimeout(timer);
      resolve();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`probe server in ${v.netns} exited (${code}): ${stderr}`));
    });
  });
  return child;
}

/** Client, bridge and one server per variant, all inside the bench's own netns; nothing touches the host's. */
async function topology(ctx: BenchContext, variants: readonly VariantId[]): Promise<{ client: string; servers: Variant[]; ifname: string }> {
  const p = ctx.cleanup.prefix;
  const ifname = `${p}n`;
  const bridgeNs = await addNetns(`${p}-dp-br`);
  const bridge = `${p}br`;
  await mustInNetns(bridgeNs, "ip", ["link", "add", bridge, "type", "bridge"]);
  await mustInNetns(bridgeNs, "ip", ["link", "set", bridge, "up"]);
  // Bridged frames skip the bridge netns' (empty) netfilter hooks when br_netfilter is loaded.
  for (const family of ["iptables", "ip6tables", "arptables"]) await inNetns(bridgeNs, "sysctl", ["-qw", `net.bridge.bridge-nf-call-${family}=0`]);
  const attach = async (netns: string, index: number, address: string): Promise<void> => {
    const port = `${p}b${index}`;
    await mustInNetns(netns, "ip", ["link", "add", ifname, "type", "veth", "peer", "name", port, "netns", bridgeNs]);
    await mustInNetns(bridgeNs, "ip", ["link", "set", port, "master", bridge, "up"]);
    await mustInNetns(netns, "ip", ["addr", "add", `${address}/15`, "dev", ifname]);
    await mustInNetns(netns, "ip", ["link", "set", ifname, "up"]);
  };
  const client = await addNetns(`${p}-dp-cli`);
  await attach(client, 0, CLIENT);
  const servers: Variant[] = [];
  for (const [i, id] of variants.entries()) {
    const v: Variant = { id, label: LABELS[id], netns: await addNetns(`${p}-dp-s-${id}`), address: `198.19.255.${10 + i}` };
    await attach(v.netns, i + 1, v.address);
    servers.push(v);
  }
  return { client, servers, ifname };
}

export const datapath: Section = {
  id: "datapath",
  title: "4. Datapath: new connections and UDP packets through a secondary bridge",
  async run(ctx) {
    const unavailable = await netnsUnavailable();
    if (unavailable) return skipped(unavailable);
    if (!(await available(pythonCommand(), ["--version"]))) return skipped("python3 is not installed (the load clients)");
    const engine = await loadEngine();
    if (typeof engine === "string") return skipped(engine);
    const { policy, nft } = engine;
    const backends = await rivalBackends();
    const sizes = ctx.full ? [0, 100, 1000, 10_000] : [0, 1000];
    const reps = ctx.full ? 5 : 1;
    const seconds = ctx.full ? 2 : 0.5;
    const ids: VariantId[] = ["none", "nadguard", ...backends];
    const { client, servers, ifname } = await topology(ctx, ids);
    for (const v of servers) await startServer(ctx, v);
    for (const v of servers) await probe(client, ["closed", v.address, String(PORTS.tcp)], 5000); // ARP, warm caches
    const executor = new nft.ExecNftExecutor();

    const tcpRows: string[][] = [];
    const udpRows: string[][] = [];
    const facts = new Map<string, { tcp: number; udp: number; tcpP99: number }>();
    for (const peers of sizes) {
      ctx.log(`datapath: ${peers} peers + the client, ${reps} repetition(s) of ${seconds} s per run`);
      const allowed = [...Array.from({ length: peers }, (_, i) => peerAddress(i)), CLIENT];
      for (const v of servers) {
        if (v.id === "nadguard") {
          const state = policy.compilePod(peerSnapshot({ peers, client: { address: CLIENT }, server: { address: v.address, interface: ifname }, ports: PORTS }), DEFAULT_CONFIG, SERVER_KEY);
          const applied = await executor.run(policy.podScript(state), { netns: netnsPath(v.netns) });
          if (applied.exitCode !== 0) throw new Error(`nadguard table in ${v.netns}: ${applied.stderr.slice(0, 500)}`);
        } else if (v.id !== "none") {
          await mustInNetns(v.netns, iptablesCommand(v.id), ["-w", "-F"]);
          await mustInNetns(v.netns, iptablesCommand(v.id), ["-w", "-X"]);
          await rivalInstall(v.netns, v.id, { interface: ifname, peers: allowed, tcpPort: PORTS.tcp, udpPort: PORTS.udp });
        }
        // Sanity: the policy is in force (a port it does not allow is dropped) and the client gets through.
        const other = await probe<{ connected: boolean }>(client, ["closed", v.address, String(OTHER_PORT)], 5000);
        const allowedPort = await probe<{ connected: boolean }>(client, ["closed", v.address, String(PORTS.tcp)], 5000);
        if (other.connected !== (v.id === "none") || !allowedPort.connected) {
          throw new Error(`${v.label} with ${peers} peers: port ${OTHER_PORT} ${other.connected ? "open" : "closed"}, port ${PORTS.tcp} ${allowedPort.connected ? "open" : "closed"} — the setup is wrong`);
        }
      }
      const tcp = new Map<VariantId, TcpRun[]>(ids.map((id) => [id, []]));
      const udp = new Map<VariantId, UdpRun[]>(ids.map((id) => [id, []]));
      for (let rep = 0; rep < reps; rep++) {
        for (let i = 0; i < servers.length; i++) {
          const v = servers[(i + rep) % servers.length]!;
          tcp.get(v.id)!.push(await probe<TcpRun>(client, ["connect", v.address, String(PORTS.tcp), String(seconds)], seconds * 1000 + 30_000));
          const before = await udpReceived(v.netns);
          const sent = await probe<Omit<UdpRun, "delivered">>(client, ["udp", v.address, String(PORTS.udp), String(seconds), String(UDP_SIZE)], seconds * 1000 + 30_000);
          const received = (await udpReceived(v.netns)) - before;
          udp.get(v.id)!.push({ ...sent, delivered: received / sent.seconds });
        }
      }
      const noneTcp = tcp.get("none")!.map((r) => r.connections / r.seconds);
      const noneUdp = udp.get("none")!.map((r) => r.delivered);
      for (const v of servers) {
        const t = tcp.get(v.id)!;
        const u = udp.get(v.id)!;
        const rate = t.map((r) => r.connections / r.seconds);
        const delivered = u.map((r) => r.delivered);
        const cpu = (r: { user: number; system: number; seconds: number }): number => (r.user + r.system) / r.seconds;
        tcpRows.push([
          size(peers),
          v.label,
          count(summarize(rate).median, "/s"),
          ms(summarize(t.map((r) => r.p50_us / 1000)).median),
          ms(summarize(t.map((r) => r.p99_us / 1000)).median),
          ms(summarize(t.map((r) => r.p999_us / 1000)).median),
          v.id === "none" ? "1×" : ratioPair(pairedRatios(rate, noneTcp)),
          `${percent(summarize(t.map(cpu)).median)} (${percent(summarize(t.map((r) => r.user / r.seconds)).median)} user)`,
          String(t.reduce((s, r) => s + r.errors, 0)),
        ]);
        udpRows.push([
          size(peers),
          v.label,
          count(summarize(u.map((r) => r.sent / r.seconds)).median, "pps"),
          count(summarize(delivered).median, "pps"),
          v.id === "none" ? "1×" : ratioPair(pairedRatios(delivered, noneUdp)),
          `${percent(summarize(u.map(cpu)).median)} (${percent(summarize(u.map((r) => r.user / r.seconds)).median)} user)`,
        ]);
        facts.set(`${peers}/${v.id}`, { tcp: summarize(rate).median, udp: summarize(delivered).median, tcpP99: summarize(t.map((r) => r.p99_us / 1000)).median });
      }
    }

    // Diagnostic: the same UDP flood against plain nft set layouts in the nadguard server's netns.
    const layoutRows: string[][] = [];
    const layoutFacts = new Map<string, number>();
    const ngServer = servers.find((v) => v.id === "nadguard")!;
    for (const peers of sizes.filter((n) => n > 0)) {
      const allowed = [...Array.from({ length: peers }, (_, i) => peerAddress(i)), CLIENT];
      const rates = new Map<string, number[]>(LAYOUTS.map((l) => [l.id, []]));
      for (let rep = 0; rep < reps; rep++) {
        for (const layout of LAYOUTS) {
          const applied = await executor.run(layoutScript(layout, ifname, allowed), { netns: netnsPath(ngServer.netns) });
          if (applied.exitCode !== 0) throw new Error(`layout ${layout.id}: ${applied.stderr.slice(0, 300)}`);
          const before = await udpReceived(ngServer.netns);
          const sent = await probe<Omit<UdpRun, "delivered">>(client, ["udp", ngServer.address, String(PORTS.udp), String(seconds), String(UDP_SIZE)], seconds * 1000 + 30_000);
          rates.get(layout.id)!.push(((await udpReceived(ngServer.netns)) - before) / sent.seconds);
        }
      }
      for (const layout of LAYOUTS) layoutFacts.set(`${peers}/${layout.id}`, summarize(rates.get(layout.id)!).median);
      for (const layout of LAYOUTS) layoutRows.push([size(peers), layout.label, count(summarize(rates.get(layout.id)!).median, "pps"), ratioPair(pairedRatios(rates.get(layout.id)!, rates.get("ifcat")!))]);
    }

    const tables: Table[] = [
      {
        title: `New TCP connections, one at a time (${reps} repetition${reps > 1 ? "s" : ""} × ${seconds} s per variant and size)`,
        columns: ["allowed peers (+ client)", "variant", "connections", "connect p50", "connect p99", "connect p99.9", "rate / no policy", "client CPU", "errors"],
        rows: tcpRows,
        notes: [
          "connect: time of connect() (SYN → SYN-ACK), closed with RST; each connection is a new conntrack flow whose SYN walks the server's input ruleset.",
          "Rates and latency percentiles: median over repetitions; ratio to no policy measured in the same repetition.",
          "client CPU: the python client's CPU time over wall time (1 = one core); kernel work of the path is mostly charged to it as system time.",
        ],
      },
      {
        title: `UDP, ${UDP_SIZE}-byte datagrams on one socket, no replies`,
        columns: ["allowed peers (+ client)", "variant", "sent", "reached the server socket", "received / no policy", "client CPU"],
        rows: udpRows,
        notes: ["Without a reply conntrack keeps the flow NEW, so every datagram walks the ruleset. Received: the server netns' Udp InDatagrams + InErrors over the run."],
      },
      {
        title: "Diagnostic: the same UDP flood against one plain nft set of each layout (not nadguard's code)",
        columns: ["allowed peers (+ client)", "set layout", "reached the server socket", "/ the interval layout"],
        rows: layoutRows,
        notes: ["One table in the nadguard server's netns: ct state accept, one lookup rule, a drop for the interface; elements: the same peers on UDP 5202."],
      },
    ];
    const method = [
      `Topology: netns <prefix>-dp-br holds a Linux bridge; the client netns and one server netns per variant each attach with a veth (addresses in 198.18.0.0/15); bridge-nf-call-* off in the bridge netns.`,
      "Server netns: python3 accept-and-close TCP server on 5201 (and 5203, which no policy allows), a bound, never-read UDP socket on 5202. Policies allow the client plus N other peers on TCP 5201 and UDP 5202.",
      "nadguard: the compiler's table for the server pod (src/policy compilePod + podScript) applied with src/nft's executor. Rival: bench/rival.ts, multi-networkpolicy-iptables' chains with the client's MARK rule last, hooked into INPUT for the interface.",
      "Each policy is checked before measuring: the client gets through on 5201, port 5203 is dropped.",
      "Load tools: bench/probe.py (python3 standard library), one process per run, started with nsenter in the client netns.",
    ];
    const reading: string[] = [];
    const f = (k: string) => facts.get(k);
    for (const peers of sizes) {
      const none = f(`${peers}/none`);
      const ours = f(`${peers}/nadguard`);
      const rival = f(`${peers}/nft`);
      if (!none || !ours) continue;
      reading.push(
        `${size(peers)} peers: nadguard ${count(ours.tcp, "conn/s")} (${ratio(ours.tcp / none.tcp)} no policy), ${count(ours.udp, "pps")} UDP (${ratio(ours.udp / none.udp)})` +
          (rival ? `; iptables-linear (nft backend) ${count(rival.tcp, "conn/s")}, ${count(rival.udp, "pps")} UDP.` : "."),
      );
    }
    const largest = Math.max(...sizes);
    const [ifcat, cat, hash] = ["ifcat", "cat", "hash"].map((id) => layoutFacts.get(`${largest}/${id}`));
    if (ifcat && cat && hash) {
      reading.push(
        `At ${size(largest)} peers a plain set keyed ifname . ipv4 . proto . port with the interval flag (nadguard's earlier layout) passes ${count(ifcat, "pps")}; ` +
          `the same key without the interval flag ${count(hash, "pps")} (${ratio(hash / ifcat)}), the interval key without ifname ${count(cat, "pps")} (${ratio(cat / ifcat)})` +
          (hash / ifcat > 1.5 && cat / ifcat > 1.5 ? ": the per-packet cost that grows with peers comes from the interface name inside the concatenated interval set, not from sets as such; which is why nadguard keeps peer pods (single hosts) in hash sets and only CIDRs and port ranges in interval sets." : "."),
      );
    }
    return { status: "done", tables, method, reading };
  },
};

