// The lab's meta-plugin mode: `nadguard node` runs as a child process inside the lab's switch netns
// (where the delegates make their host-side links), reading the lab's state directory, and every
// pod is attached as containerd attaches it: by executing the shim `nadguard-cni` — a copy of
// bin/nadguard-cni alone in a CNI bin dir — with the runtime's environment and the conf the daemon
// wrote as stdin. The daemon gives eth0 from the cluster network (the bridge plugin on the lab's
// eth0 bridge) and net1..N from the pod's NADs, installs the pod's table before the first
// secondary delegate runs, and records network-status in the state directory's overlay. With
// `runtimeDirs` (a private containerd's conf_dir and bin_dir, the shim already installed there by
// the node harness) the daemon writes its conflist into the runtime's conf_dir, and containerd's
// CRI is what executes the shim.
import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { chmod, copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { NADGUARD_BIN, type RunResult, run } from "./sys.js";

/** The shim as the repository holds it (bin/nadguard-cni), installed in a runtime's CNI bin dir. */
export const SHIM_SOURCE = join(dirname(NADGUARD_BIN), "nadguard-cni");

/** One entry of the network-status the daemon records (Multus' format). */
export interface NetworkStatusEntry {
  readonly name: string;
  readonly interface?: string;
  readonly ips?: readonly string[];
  readonly mac?: string;
  readonly default?: boolean;
}

/** What the runtime asks the shim for one sandbox. */
export interface SandboxRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly containerId: string;
  readonly netnsPath: string;
}

export interface MetaPluginOptions {
  /** The lab's temp dir; the daemon's dirs are made under it. */
  readonly dir: string;
  readonly stateDir: string;
  readonly switchNetns: string;
  /** The CNI_PATH the runtime gives the shim (the reference plugins). */
  readonly cniPath: string;
  /** The cluster network's conflist (eth0). */
  readonly clusterNetwork: unknown;
  readonly node: string;
  /** A container runtime's CNI conf_dir and bin_dir (holding the shim already): the daemon's instead of its own. */
  readonly runtimeDirs?: { readonly confDir: string; readonly binDir: string };
}

export class MetaPlugin {
  readonly #options: MetaPluginOptions;
  readonly #dirs: { netd: string; bin: string; cni: string; sock: string };
  #daemon: ChildProcess | undefined;
  #log = "";

  private constructor(options: MetaPluginOptions) {
    this.#options = options;
    const base = join(options.dir, "node");
    const runtime = options.runtimeDirs;
    this.#dirs = { netd: runtime?.confDir ?? join(base, "net.d"), bin: runtime?.binDir ?? join(base, "bin"), cni: join(base, "cni"), sock: join(base, "sock") };
  }

  /** Installs the shim and the cluster network's conf, starts the daemon and waits for /readyz. */
  static async start(options: MetaPluginOptions): Promise<MetaPlugin> {
    const meta = new MetaPlugin(options);
    try {
      await meta.#start();
    } catch (error) {
      await meta.stop();
      throw error;
    }
    return meta;
  }

  /** What the daemon printed so far (for failure messages). */
  get log(): string {
    return this.#log;
  }

  async #start(): Promise<void> {
    const { netd, bin, cni, sock } = this.#dirs;
    for (const dir of [netd, bin, join(this.#options.dir, "node")]) await mkdir(dir, { recursive: true });
    if (this.#options.runtimeDirs === undefined) {
      await copyFile(SHIM_SOURCE, join(bin, "nadguard-cni"));
      await chmod(join(bin, "nadguard-cni"), 0o755);
    }
    await writeFile(join(netd, "10-cluster.conflist"), JSON.stringify(this.#options.clusterNetwork));
    const daemonConfig = join(this.#options.dir, "node", "daemon.json");
    await writeFile(daemonConfig, JSON.stringify({ socketDir: sock, cniConfigDir: netd, binDir: bin, cniDir: cni }));
    // nsenter, not `ip netns exec`: that one also gives the daemon a mount namespace of its own, in
    // which a netns that containerd bind-mounts later is not a netns (setns: Invalid argument).
    const args = [`--net=/run/netns/${this.#options.switchNetns}`, process.execPath, NADGUARD_BIN, "node", "--state", this.#options.stateDir, "--node", this.#options.node, "--daemon-config", daemonConfig, "--metrics-listen", "127.0.0.1:0"];
    const daemon = spawn("nsenter", args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#daemon = daemon;
    daemon.stdout!.on("data", (chunk: Buffer) => (this.#log += chunk.toString()));
    daemon.stderr!.on("data", (chunk: Buffer) => (this.#log += chunk.toString()));
    for (let i = 0; i < 600 && daemon.exitCode === null && (await this.#ready()) !== 200; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    if ((await this.#ready()) !== 200) throw new Error(`nadguard node did not become ready:\n${this.#log}`);
  }

  #ready(): Promise<number> {
    return new Promise((resolve) => {
      const req = request({ socketPath: join(this.#dirs.sock, "nadguard.sock"), path: "/readyz" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", () => resolve(0));
      req.end();
    });
  }

  /** Runs the installed shim as containerd does: its environment, and the daemon's conf with the pod's annotations as stdin. */
  async shim(command: "ADD" | "DEL", sandbox: SandboxRef, podAnnotations: Record<string, string>): Promise<RunResult> {
    const list = JSON.parse(await readFile(join(this.#dirs.netd, "00-nadguard.conflist"), "utf8")) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
    const input = JSON.stringify({ ...list.plugins[0], name: list.name, cniVersion: list.cniVersion, runtimeConfig: { "io.kubernetes.cri.pod-annotations": podAnnotations } });
    return run(join(this.#dirs.bin, "nadguard-cni"), [], {
      input,
      env: {
        PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`,
        CNI_COMMAND: command,
        CNI_CONTAINERID: sandbox.containerId,
        CNI_NETNS: sandbox.netnsPath,
        CNI_IFNAME: "eth0",
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${sandbox.namespace};K8S_POD_NAME=${sandbox.name};K8S_POD_INFRA_CONTAINER_ID=${sandbox.containerId};K8S_POD_UID=${sandbox.uid}`,
        CNI_PATH: this.#options.cniPath,
      },
      timeoutMs: 120_000,
    });
  }

  /** The network-status the daemon recorded for a pod, as `render`, `verdict` and the enforcer see it. */
  async networkStatus(namespace: string, name: string): Promise<NetworkStatusEntry[]> {
    return JSON.parse(await readFile(join(this.#options.stateDir, ".nadguard", "network-status", namespace, `${name}.json`), "utf8")) as NetworkStatusEntry[];
  }

  /** SIGTERM, then SIGKILL after 5 s. Never throws. */
  async stop(): Promise<void> {
    const daemon = this.#daemon;
    if (daemon?.pid === undefined || daemon.exitCode !== null) return;
    const exited = new Promise((resolve) => daemon.once("exit", resolve));
    process.kill(daemon.pid, "SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (daemon.exitCode === null) process.kill(daemon.pid, "SIGKILL");
  }
}
