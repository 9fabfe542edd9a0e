// Benchmark 3 — apply: what it costs to put a pod's rules into its network namespace. nadguard:
// the compiler's real ruleset for a server pod allowing N peers, applied as one transaction through
// both of src/nft's executors side by side, `nft -f` processes (nsenter + nft) and the native addon
// (libnftables in-process, setns), against the floor of an empty `nft -f` in the same netns; the
// table built in a netns that has none (no `delete table`, the enforcer's path for a netns known
// empty); and a one-peer change (the compiler's element add/delete transaction). The rival:
// multi-networkpolicy-iptables' linear chains for the same policy, applied by iptables-restore
// (both iptables backends), where a one-peer change is a full restore of the pod's chains.
import { DEFAULT_CONFIG } from "../src/config/config.js";
import type * as NftModule from "../src/nft/index.js";
import type * as PolicyModule from "../src/policy/index.js";
import { type Section, skipped } from "./report.js";
import { type IptablesBackend, iptablesCommand, rivalInstall, rivalRestore, rivalRestoreScript } from "./rival.js";
import { type Table, bytes, ms, msPair, pairedRatios, ratio, ratioPair, size, summarize } from "./stats.js";
import { SERVER_KEY, peerAddress, peerSnapshot } from "./synthetic.js";
import { addNetns, available, engineModule, inNetns, netnsPath, sleep } from "./system.js";

/** The pause between removing the table (untimed) and building it again where none is. */
const SETTLE_AFTER_DELETE_MS = 100;

export const SERVER = { address: "198.19.255.1", interface: "net1" } as const;
export const PORTS = { tcp: 5201, udp: 5202 } as const;

/** Why a netns section cannot run here, or undefined. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, nft)";
  for (const [command, args] of [["ip", ["-V"]], ["nft", ["--version"]], ["nsenter", ["--version"]]] as const) {
    if (!(await available(command, args))) return `${command} is not installed`;
  }
  return undefined;
}

export async function loadEngine(): Promise<{ policy: typeof PolicyModule; nft: typeof NftModule; from: "dist" | "tsx" } | string> {
  try {
    const [policy, nft] = await Promise.all([engineModule<typeof PolicyModule>("src/policy/index.js"), engineModule<typeof NftModule>("src/nft/index.js")]);
    if (typeof policy.module.compilePod !== "function" || typeof policy.module.podScript !== "function" || typeof policy.module.transitionOps !== "function") {
      return "src/policy does not export compilePod, podScript and transitionOps yet";
    }
    if (typeof nft.module.ExecNftExecutor !== "function") return "src/nft does not export ExecNftExecutor yet";
    return { policy: policy.module, nft: nft.module, from: nft.from };
  } catch (error) {
    return `src/policy or src/nft cannot be loaded: ${(error as Error).message.split("\n")[0]}`;
  }
}

/** The rival backends this machine has. */
export async function rivalBackends(): Promise<IptablesBackend[]> {
  const out: IptablesBackend[] = [];
  for (const backend of ["nft", "legacy"] as const) if (await available(iptablesCommand(backend), ["--version"])) out.push(backend);
  return out;
}

export const apply: Section = {
  id: "apply",
  title: "3. Apply: per-netns transaction cost vs its floor and iptables",
  async run(ctx) {
    const unavailable = await netnsUnavailable();
    if (unavailable) return skipped(unavailable);
    const engine = await loadEngine();
    if (typeof engine === "string") return skipped(engine);
    const { policy, nft } = engine;
    const backends = await rivalBackends();
    const sizes = ctx.full ? [10, 100, 1000, 10_000] : [10, 100, 1000];
    const reps = ctx.full ? 15 : 3;
    const executor = new nft.ExecNftExecutor();
    const loaded = nft.loadNftAddon();
    if (!loaded.ok) return skipped(`the native nft addon cannot be used: ${loaded.error}`);
    const addon = new nft.AddonNftExecutor(loaded.value);
    const p = ctx.cleanup.prefix;
    const ours = await addNetns(`${p}-ap-ng`);
    const rivalNs = new Map<IptablesBackend, string>();
    for (const b of backends) rivalNs.set(b, await addNetns(`${p}-ap-${b}`));

    const applyWith = async (through: NftModule.NftExecutor, script: string): Promise<number> => {
      const started = performance.now();
      const result = await through.run(script, { netns: netnsPath(ours) });
      const elapsed = performance.now() - started;
      if (result.exitCode !== 0) throw new Error(`an apply in ${ours} failed (${result.exitCode}): ${result.stderr.slice(0, 500)}`);
      return elapsed;
    };
    const applyNft = (script: string): Promise<number> => applyWith(executor, script);
    const applyAddon = (script: string): Promise<number> => applyWith(addon, script);
    // The table built where there is none: what the enforcer applies in a netns known to be empty.
    const dropTable = "add table inet nadguard\ndelete table inet nadguard\n";
    const applyRival = async (backend: IptablesBackend, script: string): Promise<number> => {
      const result = await rivalRestore(rivalNs.get(backend)!, backend, script);
      if (result.code !== 0) throw new Error(`iptables-restore (${backend}) failed: ${result.stderr.slice(0, 500)}`);
      return result.ms;
    };

    const wholeRows: string[][] = [];
    const changeRows: string[][] = [];
    const addonRows: string[][] = [];
    const facts: {
      peers: number;
      fresh: number;
      floorRatio: number;
      changeRatio: number;
      addonFresh: number;
      addonFreshRatio: number;
      addonBuild: number;
      addonBuildRatio: number;
      addonChangeRatio: number;
      rivalNft?: number;
      rivalChange?: number;
    }[] = [];
    // The namespaces go with the run's sweep (bench/main.ts), also when this throws.
    {
      for (const peers of sizes) {
        ctx.log(`apply: ${peers} peers, ${reps} repetitions`);
        const state = policy.compilePod(peerSnapshot({ peers, server: SERVER, ports: PORTS }), DEFAULT_CONFIG, SERVER_KEY);
        const grown = policy.compilePod(peerSnapshot({ peers: peers + 1, server: SERVER, ports: PORTS }), DEFAULT_CONFIG, SERVER_KEY);
        if (!state || !grown) throw new Error("the server pod has no desired table: the synthetic policy does not select it");
        const renderTimes: number[] = [];
        let fresh = "";
        for (let i = 0; i < 5; i++) {
          const t = performance.now();
          fresh = policy.podScript(state);
          renderTimes.push(performance.now() - t);
        }
        const elements = policy.desiredTable(state).elements.length;
        const addOps = policy.transitionOps(state, grown);
        const delOps = policy.transitionOps(grown, state);
        const addScript = policy.opsScript(addOps);
        const delScript = policy.opsScript(delOps);
        const build = fresh.replace(dropTable, "");
        if (build === fresh) throw new Error("podScript no longer starts with add table, delete table: update the bench");
        const rivalN = rivalRestoreScript({ interface: SERVER.interface, peers: Array.from({ length: peers }, (_, i) => peerAddress(i)), tcpPort: PORTS.tcp, udpPort: PORTS.udp });
        const rivalN1 = rivalRestoreScript({ interface: SERVER.interface, peers: Array.from({ length: peers + 1 }, (_, i) => peerAddress(i)), tcpPort: PORTS.tcp, udpPort: PORTS.udp });

        // Installed once per size (untimed): the table, and the rival's chains with their INPUT/OUTPUT hooks.
        await applyNft(fresh);
        for (const b of backends) {
          await inNetns(rivalNs.get(b)!, iptablesCommand(b), ["-w", "-F"]);
          await inNetns(rivalNs.get(b)!, iptablesCommand(b), ["-w", "-X"]);
          await rivalInstall(rivalNs.get(b)!, b, { interface: SERVER.interface, peers: [], tcpPort: PORTS.tcp, udpPort: PORTS.udp });
          await applyRival(b, rivalN);
        }

        const floor: number[] = [];
        const whole: number[] = [];
        const change: number[] = [];
        const rivalWhole = new Map(backends.map((b) => [b, [] as number[]]));
        const rivalChange = new Map(backends.map((b) => [b, [] as number[]]));
        const addonFloor: number[] = [];
        const addonWhole: number[] = [];
        const addonBuild: number[] = [];
        const addonChange: number[] = [];
        for (let rep = 0; rep < reps; rep++) {
          floor.push(await applyNft(""));
          whole.push(await applyNft(fresh));
          // One peer appears, then goes: both are one-peer changes; the netns ends as it began.
          change.push(((await applyNft(addScript)) + (await applyNft(delScript))) / 2);
          addonFloor.push(await applyAddon(""));
          addonWhole.push(await applyAddon(fresh));
          addonChange.push(((await applyAddon(addScript)) + (await applyAddon(delScript))) / 2);
          await applyAddon(dropTable);
          // The addon closes its netlink socket on a thread of its own, and after a delete that close
          // waits for the kernel's destroy work (an RCU grace period) that a commit started meanwhile
          // would share: a netns the enforcer builds a table in has had no delete just before.
          await sleep(SETTLE_AFTER_DELETE_MS);
          addonBuild.push(await applyAddon(build));
          for (const b of backends) {
            rivalWhole.get(b)!.push(await applyRival(b, rivalN));
            rivalChange.get(b)!.push(((await applyRival(b, rivalN1)) + (await applyRival(b, rivalN))) / 2);
          }
        }
        const floorS = summarize(floor);
        const wholeS = summarize(whole);
        const changeS = summarize(change);
        const rivalCells = (map: Map<IptablesBackend, number[]>, ours: number[]): string[] =>
          ["nft", "legacy"].flatMap((b) => {
            const samples = map.get(b as IptablesBackend);
            return samples ? [msPair(summarize(samples)), ratioPair(pairedRatios(samples, ours))] : ["not installed", "–"];
          });
        wholeRows.push([
          size(peers),
          msPair(floorS),
          msPair(wholeS),
          ratioPair(pairedRatios(whole, floor)),
          ms(summarize(renderTimes).median),
          size(elements),
          bytes(fresh.length),
          ...rivalCells(rivalWhole, whole),
        ]);
        changeRows.push([
          size(peers),
          msPair(changeS),
          ratioPair(pairedRatios(change, floor)),
          `${addOps.length} / ${delOps.length}`,
          bytes(addScript.length),
          ...rivalCells(rivalChange, change),
        ]);
        addonRows.push([
          size(peers),
          msPair(summarize(addonFloor)),
          msPair(summarize(addonWhole)),
          ratioPair(pairedRatios(addonWhole, floor)),
          ratioPair(pairedRatios(addonWhole, whole)),
          msPair(summarize(addonBuild)),
          ratioPair(pairedRatios(addonBuild, floor)),
          msPair(summarize(addonChange)),
          ratioPair(pairedRatios(addonChange, floor)),
          ratioPair(pairedRatios(addonChange, change)),
        ]);
        facts.push({
          peers,
          fresh: wholeS.median,
          floorRatio: pairedRatios(whole, floor).median,
          changeRatio: pairedRatios(change, floor).median,
          addonFresh: summarize(addonWhole).median,
          addonFreshRatio: pairedRatios(addonWhole, floor).median,
          addonBuild: summarize(addonBuild).median,
          addonBuildRatio: pairedRatios(addonBuild, floor).median,
          addonChangeRatio: pairedRatios(addonChange, floor).median,
          ...(rivalWhole.has("nft") && { rivalNft: summarize(rivalWhole.get("nft")!).median }),
          ...(rivalChange.has("nft") && { rivalChange: summarize(rivalChange.get("nft")!).median }),
        });
      }
    }

    const tables: Table[] = [
      {
        title: `Whole ruleset of one pod, applied in its netns (${reps} repetitions)`,
        columns: ["allowed peers", "floor: empty nft -f", "nadguard: fresh table", "nadguard / floor", "render (node)", "set elements", "script", "iptables-nft-restore", "/ nadguard", "iptables-legacy-restore", "/ nadguard"],
        rows: wholeRows,
        notes: [
          "Times are wall time of one process run in the netns (nsenter --net=… nft -f - / iptables-restore --noflush), median (p99) over repetitions; ratios taken within each repetition.",
          "nadguard's fresh table is the compiler's podScript: add table, delete table, recreate chains, sets, elements and rules in one transaction. render: building that script in node, not included in the apply time.",
        ],
      },
      {
        title: `The same transactions through the native addon, beside nft -f processes in the same repetitions (${reps} repetitions)`,
        columns: [
          "allowed peers",
          "addon: empty",
          "addon: fresh table",
          "/ empty nft -f",
          "/ nft -f fresh table",
          "addon: table where none is",
          "/ empty nft -f",
          "addon: one-peer change",
          "/ empty nft -f",
          "/ nft -f change",
        ],
        rows: addonRows,
        notes: [
          "The native addon (native/nft, the enforcer's default executor): libnftables on a libuv worker thread that enters the netns with setns, the script as one transaction; wall time from the call to its result in node. The floor of every `/ empty nft -f` column is the empty `nft -f` process of the same repetition (the target's floor).",
          `fresh table: the same podScript as above (add table, delete table, the whole table), over the table already there. table where none is: the same table without \`add table, delete table\`, applied ${SETTLE_AFTER_DELETE_MS} ms after the table was removed (untimed; the kernel's destroy work after a delete is then over): what the enforcer applies to a netns known to hold no table. Deleting a table makes the commit wait in the kernel (the gap between the two columns).`,
        ],
      },
      {
        title: "One-peer change (a peer pod appears, then goes away)",
        columns: ["allowed peers", "nadguard: element transaction", "nadguard / floor", "ops (add / delete)", "script", "iptables-nft-restore", "/ nadguard", "iptables-legacy-restore", "/ nadguard"],
        rows: changeRows,
        notes: [
          "nadguard: the compiler's transitionOps between the pod's desired states with N and N+1 peers (element add, then element delete), averaged per change.",
          "rival: multi-networkpolicy-iptables re-renders and restores the pod's chains on every sync: the full chain with N+1, then N rules. Its sync also runs iptables-save first, not counted here.",
        ],
      },
    ];
    const method = [
      `nadguard's modules as \`nadguard enforce\` runs them: ${engine.from === "dist" ? "the compiled build (dist/), current with the sources" : "the sources through tsx (dist/ missing or older than the sources; tsx's output is slower than tsc's)"}.`,
      "Server pod selected by one policy: ingress from pods labelled role=client on TCP 5201 and UDP 5202 over net-system/data; N peer pods at every other address of 198.18.0.0/15 (so no two merge into one interval). nadguard's table comes from src/policy compilePod/podScript; the rival's chains from bench/rival.ts (the multi-networkpolicy-iptables layout, one MARK rule per peer).",
      "Each layout in its own empty netns of the bench (`<prefix>-ap-ng`, `-ap-nft`, `-ap-legacy`); floors and layouts alternate within each repetition.",
    ];
    const reading: string[] = [];
    for (const f of facts) {
      reading.push(
        `${size(f.peers)} peers: through the addon, the whole table ${ms(f.addonFresh)} = ${ratio(f.addonFreshRatio)} the empty nft -f (${ms(f.addonBuild)} = ${ratio(f.addonBuildRatio)} where there is no table to delete), a one-peer change ${ratio(f.addonChangeRatio)}; through nft -f processes ${ms(f.fresh)} = ${ratio(f.floorRatio)}, a one-peer change ${ratio(f.changeRatio)}` +
          (f.rivalNft !== undefined ? `; iptables-nft-restore takes ${ms(f.rivalNft)} for the whole chain and ${ms(f.rivalChange!)} per one-peer sync.` : "."),
      );
    }
    reading.push("Targets: apply ≤ 1.5× the empty nft -f up to 1,000 peers; a one-peer change costing the same whatever the number of peers.");
    return { status: "done", tables, method, reading };
  },
};
