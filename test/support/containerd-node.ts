// The node harness: a private containerd 1.6 (Debian's, with runc) whose CRI plugin creates pods'
// sandboxes and runs the CNI plugins, as on a Kubernetes node without kubelet. Everything it makes
// lives under one per-run temp dir (gRPC socket, root, state, runc root, netns mounts, CNI conf and
// bin dirs) or carries the run's prefix (its netns, the pods' cgroup root); containerd runs inside a
// netns of the run, so bridges and veths the plugins make on the "host" side never touch the
// machine's own netns. The suite decides the pods' networks through one callback that writes the
// CRI's conf_dir (the reference plugins' conflist today, nadguard's shim tomorrow).
//
// stop() removes all of it, also after a failure or a crash of containerd: sandboxes through the
// CRI, containerd by its PID, what containerd left (runc containers, shims, their sockets in
// /run/containerd/s, mounts, cgroups, go-cni's cache entries in /var/lib/cni/results), the netns,
// the temp dir. leftovers() lists whatever is still there, for the suites to assert nothing is.
// A run killed before stop() is cleaned by the next start() (its pid is dead).
//
// With nadguard's meta-plugin in place of the reference conflist (checked against the node
// daemon's branch): `plugins: { "nadguard-cni": "<repo>/bin/nadguard-cni" }` and a writeConf that
// writes the cluster network (writeBridgeConflist), starts `nadguard node --daemon-config F` inside
// the node's netns (`nsenter --net=/run/netns/<paths.netns>`, so its delegates' bridges land there)
// with `cniConfigDir: paths.confDir`, `binDir: paths.binDir` and its socket and cache dirs under
// `paths.dataDir`, waits for `00-nadguard.conflist`, and returns the daemon's stop as its cleanup
// (the teardown's DELs still reach it; it is stopped after containerd).
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, rm, rmdir, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pod } from "../../src/api/objects.js";
import { podSandboxConfig, type KubeletSettings } from "../../src/cri/pod-sandbox-config.js";
import { CriClient, type SandboxDetails } from "../../src/cri/runtime-client.js";
import { cleanupStale, must, newPrefix, run, sleep } from "../e2e/sys.js";
import { buildPauseImage } from "./pause-image.js";

/** Where Debian's containernetworking-plugins installs the reference plugins. */
export const REFERENCE_PLUGINS_DIR = "/usr/lib/cni";
/** containerd 1.6 puts shim sockets here whatever its config says (runtime/v2/shim/util_unix.go). */
const SHIM_SOCKET_DIR = "/run/containerd/s";
/** go-cni's libcni cache (not configurable in containerd 1.6). */
export const LIBCNI_RESULTS_DIR = "/var/lib/cni/results";
const K8S_NAMESPACE = "k8s.io";
const DIR_PATTERN = /^nadguard-node-(ng-(\d+)-[0-9a-f]{6}-)$/;

/** Every path of one node, all under `dir`. */
export interface NodePaths {
  readonly prefix: string;
  readonly dir: string;
  readonly config: string;
  readonly socket: string;
  readonly root: string;
  readonly state: string;
  readonly runcRoot: string;
  /** The CRI plugin's CNI `conf_dir`. */
  readonly confDir: string;
  /** The CRI plugin's CNI `bin_dir`: the reference plugins and the suite's own (one dir in 1.6). */
  readonly binDir: string;
  /** A dir for the suite's plugin state (e.g. host-local's `dataDir`). */
  readonly dataDir: string;
  readonly log: string;
  readonly pidFile: string;
  /** The netns (name under /run/netns) containerd and so every CNI plugin runs in. */
  readonly netns: string;
  /** kubelet's `--cgroup-root` for the node's pods: a cgroup of this run. */
  readonly cgroupRoot: string;
}

/**
 * What a conf writer that started something (e.g. `nadguard node`, which writes its own conflist
 * and must answer the DELs of the teardown) gives back: called once containerd is stopped, before
 * the harness sweeps the processes that name the node's dir.
 */
export type ConfCleanup = () => Promise<void>;

export interface ContainerdNodeOptions {
  /**
   * Writes the CNI conf_dir before containerd starts (the suite's networks: the one line to change
   * to put nadguard's shim in place of a reference conflist). A conf written later is picked up too,
   * when written in place or renamed within conf_dir (observed with containerd 1.6).
   */
  readonly writeConf: (node: NodePaths) => Promise<void | ConfCleanup>;
  /**
   * Executables installed in bin_dir beside the reference plugins: plugin type → path (a `.js` or
   * `.mjs` file, or one starting `#!/usr/bin/env node` such as bin/nadguard-cni, is run with the
   * node binary running the tests, through a wrapper: containerd's PATH may have no node).
   */
  readonly plugins?: Readonly<Record<string, string>>;
  /** Deadline of each CRI call, ms (kubelet's default runtime-request-timeout is 2 min). */
  readonly criTimeoutMs?: number;
}

/** The pod's sandbox as the runtime made it. */
export interface NodeSandbox extends SandboxDetails {
  readonly id: string;
}

function nodePaths(prefix: string, dir: string): NodePaths {
  return {
    prefix,
    dir,
    config: join(dir, "containerd.toml"),
    socket: join(dir, "containerd.sock"),
    root: join(dir, "root"),
    state: join(dir, "state"),
    runcRoot: join(dir, "runc"),
    confDir: join(dir, "net.d"),
    binDir: join(dir, "bin"),
    dataDir: join(dir, "data"),
    log: join(dir, "containerd.log"),
    pidFile: join(dir, "containerd.pid"),
    netns: `${prefix}node`,
    cgroupRoot: `/${prefix}pods`,
  };
}

/** A cluster network of the reference plugins for a node: bridge + host-local, dual stack, names and ranges of the run. */
export interface BridgeNetwork {
  readonly name: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly subnet6: string;
  /** host-local's dataDir: leases are files `<ipamDir>/<name>/<address>`. */
  readonly ipamDir: string;
}

export function bridgeNetwork(paths: NodePaths): BridgeNetwork {
  const hex = /^ng-\d+-([0-9a-f]{6})-$/.exec(paths.prefix)?.[1] ?? "000000";
  return {
    name: `${paths.prefix}cluster`,
    bridge: `ngbr-${hex}`,
    subnet: `198.19.${parseInt(hex.slice(0, 2), 16)}.0/24`,
    subnet6: `fd00:c1:${parseInt(hex.slice(0, 4), 16).toString(16)}::/64`,
    ipamDir: join(paths.dataDir, "ipam"),
  };
}

/**
 * A conf_dir writer: the reference bridge + host-local as the node's cluster network (one conflist,
 * as a cluster network's DaemonSet would install it), with `chained` plugins after them, as `file`.
 */
export async function writeBridgeConflist(paths: NodePaths, chained: readonly Record<string, unknown>[] = [], file = "10-cluster.conflist"): Promise<void> {
  const net = bridgeNetwork(paths);
  const conflist = {
    cniVersion: "1.0.0",
    name: net.name,
    plugins: [
      {
        type: "bridge",
        bridge: net.bridge,
        isGateway: true,
        ipMasq: false,
        ipam: { type: "host-local", dataDir: net.ipamDir, ranges: [[{ subnet: net.subnet }], [{ subnet: net.subnet6 }]], routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }] },
      },
      ...chained,
    ],
  };
  await writeFile(join(paths.confDir, file), JSON.stringify(conflist, null, 2));
}

/** host-local's leases of the node's bridge network. */
export async function bridgeLeases(paths: NodePaths): Promise<string[]> {
  const net = bridgeNetwork(paths);
  return (await readdir(join(net.ipamDir, net.name)).catch(() => [] as string[])).filter((f) => /^[0-9.]+$|:/.test(f) && f !== "lock").sort();
}

/** The reference of the offline pause image of a run. */
function pauseReference(paths: NodePaths): string {
  return `nadguard.invalid/pause:${paths.prefix.replace(/-$/, "")}`;
}

/** containerd's config (version 2): every path under the run's dir, no registry, CNI dirs of the run. */
export function containerdConfig(paths: NodePaths): string {
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  const q = JSON.stringify;
  return `version = 2
root = ${q(paths.root)}
state = ${q(paths.state)}
temp = ${q(join(paths.dir, "tmp"))}
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = ${q(paths.socket)}

[ttrpc]
  address = ${q(`${paths.socket}.ttrpc`)}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = ${q(join(paths.dir, "runc-v1"))}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(paths.dir, "opt"))}

[${cri}]
  sandbox_image = ${q(pauseReference(paths))}
  # root here may lack CAP_SYS_RESOURCE (observed with containerd 1.6)
  restrict_oom_score_adj = true
  # pods' netns under the state dir, not /var/run/netns
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true

[${cri}.cni]
  bin_dir = ${q(paths.binDir)}
  conf_dir = ${q(paths.confDir)}
  max_conf_num = 1

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  Root = ${q(paths.runcRoot)}
  SystemdCgroup = false
`;
}

/** The process runs: it exists and is not a zombie (gone, not yet reaped by whoever inherited it). */
export function processRuns(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function readPid(file: string): Promise<number> {
  const text = await readFile(file, "utf8").catch(() => "");
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : 0;
}

/** The process's command line, "" when it is gone. */
async function cmdline(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).replace(/\0/g, " ").trim();
}

/** containerd's PID from the run's pid file, when that process is still the run's containerd. */
async function containerdPid(paths: NodePaths): Promise<number> {
  const pid = await readPid(paths.pidFile);
  return pid > 0 && (await cmdline(pid)).includes(paths.config) ? pid : 0;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (processRuns(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Sends `signal` to `pid` and waits; SIGKILL when it is still there after `ms`. */
async function stopProcess(pid: number, signal: NodeJS.Signals, ms: number): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  if (!(await waitGone(pid, ms))) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      return;
    }
    await waitGone(pid, 5_000);
  }
}

/** Mount points under `dir` (deepest first), from this process's mountinfo (field 5, octal escapes). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return info
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, code: string) => String.fromCharCode(parseInt(code, 8))))
    .filter((mount) => mount.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** The mount points of every cgroup hierarchy (v1 controllers and v2). */
async function cgroupMounts(): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return info
    .split("\n")
    .filter((line) => / - cgroup2? /.test(line))
    .map((line) => line.split(" ")[4] ?? "")
    .filter(Boolean);
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

/** Processes whose command line names the node's dir (containerd, its shims), by PID. */
async function processesOf(paths: NodePaths): Promise<{ pid: number; cmdline: string }[]> {
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const line = await cmdline(Number(entry));
    if (line.includes(`${paths.dir}/`)) found.push({ pid: Number(entry), cmdline: line });
  }
  return found;
}

/** Every sandbox id the node's containerd recorded (CRI's store and the runtime's task dirs). */
async function sandboxIdsOnDisk(paths: NodePaths): Promise<string[]> {
  const ids = new Set([
    ...(await subdirs(join(paths.root, "io.containerd.grpc.v1.cri", "sandboxes"))),
    ...(await subdirs(join(paths.state, "io.containerd.runtime.v2.task", K8S_NAMESPACE))),
    ...(await subdirs(join(paths.runcRoot, K8S_NAMESPACE))),
  ]);
  return [...ids].filter((id) => /^[0-9a-f]{64}$/.test(id));
}

/** The shim socket containerd 1.6 derives for a task: sha256 of `<grpc address>/<namespace>/<id>`. */
export function shimSocket(paths: NodePaths, id: string): string {
  return join(SHIM_SOCKET_DIR, createHash("sha256").update(join(paths.socket, K8S_NAMESPACE, id)).digest("hex"));
}

/** The cgroup dirs of the node (the pods' root in each hierarchy), deepest first. */
async function cgroupDirs(paths: NodePaths): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    if (!existsSync(dir)) return;
    for (const sub of await subdirs(dir)) await walk(join(dir, sub));
    found.push(dir);
  };
  for (const mount of await cgroupMounts()) await walk(join(mount, paths.cgroupRoot));
  return found;
}

/** go-cni's cache entries (`<network>-<containerID>-<ifname>`) of the node's sandboxes. */
async function cacheEntries(ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const files = await readdir(LIBCNI_RESULTS_DIR).catch(() => [] as string[]);
  return files.filter((file) => ids.some((id) => file.includes(`-${id}-`))).map((file) => join(LIBCNI_RESULTS_DIR, file));
}

/**
 * Removes everything of a node, whatever state it is in (containerd running, crashed, or never
 * started); never throws. Returns what it could not remove (empty when the node is gone).
 */
async function teardown(paths: NodePaths, knownIds: readonly string[], criTimeoutMs: number, confCleanup?: ConfCleanup): Promise<string[]> {
  const ids = new Set(knownIds);
  const pid = await containerdPid(paths);
  if (pid > 0) {
    // As kubelet does when a pod goes away: stop (CNI DEL), then remove, each sandbox.
    const cri = new CriClient(paths.socket, { timeoutMs: criTimeoutMs });
    try {
      const sandboxes = await cri.listPodSandbox().catch(() => []);
      for (const sandbox of sandboxes) {
        ids.add(sandbox.id);
        await cri.stopPodSandbox(sandbox.id).catch(() => undefined);
        await cri.removePodSandbox(sandbox.id).catch(() => undefined);
      }
    } finally {
      cri.close();
    }
    await stopProcess(pid, "SIGTERM", 10_000);
  }
  await confCleanup?.().catch(() => undefined);
  for (const id of await sandboxIdsOnDisk(paths)) ids.add(id);
  for (const id of ids) {
    // What a crashed containerd left: the runc container (its pause process) and its shim socket.
    if (existsSync(join(paths.runcRoot, K8S_NAMESPACE, id))) await run("runc", ["--root", join(paths.runcRoot, K8S_NAMESPACE), "delete", "--force", id]);
    await unlink(shimSocket(paths, id)).catch(() => undefined);
  }
  // The shims (containerd 1.6 writes no shim.pid): the processes started with this node's address.
  for (const shim of await processesOf(paths)) await stopProcess(shim.pid, "SIGKILL", 5_000);
  // Mounts (rootfs overlays, netns bind mounts, shm): deepest first, lazily when busy.
  for (let round = 0; round < 5; round++) {
    const mounts = await mountsUnder(paths.dir);
    if (mounts.length === 0) break;
    for (const mount of mounts) {
      if ((await run("umount", [mount])).code !== 0) await run("umount", ["--lazy", mount]);
    }
  }
  await run("ip", ["netns", "delete", paths.netns]);
  for (const dir of await cgroupDirs(paths)) await rmdir(dir).catch(() => undefined);
  for (const file of await cacheEntries([...ids])) await unlink(file).catch(() => undefined);
  // /run/containerd/s and /run/containerd only when nothing else (another containerd) uses them.
  await rmdir(SHIM_SOCKET_DIR).catch(() => undefined);
  await rmdir("/run/containerd").catch(() => undefined);
  if ((await mountsUnder(paths.dir)).length === 0) await rm(paths.dir, { recursive: true, force: true });
  return leftoversOf(paths, [...ids]);
}

/** What of a node still exists: processes, mounts, netns, cgroups, cache entries, sockets, its dir. */
async function leftoversOf(paths: NodePaths, ids: readonly string[]): Promise<string[]> {
  const left: string[] = [];
  const pid = await containerdPid(paths);
  if (pid > 0) left.push(`containerd pid ${pid}`);
  for (const proc of await processesOf(paths)) left.push(`process ${proc.pid}: ${proc.cmdline}`);
  for (const mount of await mountsUnder(paths.dir)) left.push(`mount ${mount}`);
  if (existsSync(`/run/netns/${paths.netns}`)) left.push(`netns ${paths.netns}`);
  for (const dir of await cgroupDirs(paths)) left.push(`cgroup ${dir}`);
  for (const file of await cacheEntries(ids)) left.push(`cache ${file}`);
  for (const id of ids) if (existsSync(shimSocket(paths, id))) left.push(`shim socket ${shimSocket(paths, id)}`);
  if (existsSync(paths.dir)) left.push(`dir ${paths.dir}`);
  return left;
}

/**
 * Tears down the nodes of runs whose process is gone (a killed test run): their temp dirs, and
 * shims still running with the address of a dir already removed.
 */
export async function cleanupStaleNodes(): Promise<string[]> {
  const stale = new Set<string>();
  for (const entry of await readdir(tmpdir()).catch(() => [] as string[])) {
    const match = DIR_PATTERN.exec(entry);
    if (match && !processRuns(Number(match[2]))) stale.add(match[1]!);
  }
  const inCmdline = new RegExp(`${tmpdir().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/nadguard-node-(ng-(\\d+)-[0-9a-f]{6}-)/`);
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    const match = /^\d+$/.test(entry) ? inCmdline.exec(await cmdline(Number(entry))) : null;
    if (match && !processRuns(Number(match[2]))) stale.add(match[1]!);
  }
  for (const prefix of stale) await teardown(nodePaths(prefix, join(tmpdir(), `nadguard-node-${prefix}`)), [], 10_000);
  return [...stale];
}

export class ContainerdNode {
  readonly cri: CriClient;
  readonly kubelet: KubeletSettings;
  readonly #ids = new Set<string>();
  readonly #cgroupParents = new Map<string, string>();
  readonly #criTimeoutMs: number;
  #process: ChildProcess | undefined;
  #confCleanup: ConfCleanup | undefined;
  #stopped: Promise<string[]> | undefined;

  private constructor(
    readonly paths: NodePaths,
    options: ContainerdNodeOptions,
  ) {
    this.#criTimeoutMs = options.criTimeoutMs ?? 120_000;
    this.cri = new CriClient(paths.socket, { timeoutMs: this.#criTimeoutMs });
    this.kubelet = { cgroupRoot: paths.cgroupRoot, clusterDns: ["198.18.255.10"], clusterDomain: "cluster.local" };
  }

  /** Starts a node; on any failure removes what it made and throws. */
  static async start(options: ContainerdNodeOptions): Promise<ContainerdNode> {
    await cleanupStaleNodes();
    await cleanupStale();
    const prefix = newPrefix();
    // Named exactly `nadguard-node-<prefix>` (no random tail): cleanupStaleNodes reads the pid in it.
    const dir = join(tmpdir(), `nadguard-node-${prefix}`);
    await mkdir(dir, { mode: 0o700 });
    const node = new ContainerdNode(nodePaths(prefix, dir), options);
    try {
      await node.#prepare(options);
      node.#confCleanup = (await options.writeConf(node.paths)) ?? undefined;
      await node.#launch();
      await node.#importPause();
    } catch (error) {
      const left = await node.stop();
      if (left.length > 0) (error as Error).message += ` (and the cleanup left: ${left.join("; ")})`;
      throw error;
    }
    return node;
  }

  async #prepare(options: ContainerdNodeOptions): Promise<void> {
    const p = this.paths;
    for (const dir of [p.root, p.state, p.runcRoot, p.confDir, p.binDir, p.dataDir, join(p.dir, "tmp"), join(p.dir, "opt"), join(p.dir, "image")]) await mkdir(dir, { recursive: true });
    await writeFile(p.config, containerdConfig(p));
    for (const plugin of await readdir(REFERENCE_PLUGINS_DIR)) await symlink(join(REFERENCE_PLUGINS_DIR, plugin), join(p.binDir, plugin));
    for (const [type, path] of Object.entries(options.plugins ?? {})) {
      await rm(join(p.binDir, type), { force: true });
      if (/\.m?js$/.test(path) || (await readFile(path, "utf8").catch(() => "")).startsWith("#!/usr/bin/env node")) {
        // A plugin written for node runs with this node binary, whatever PATH containerd has.
        await writeFile(join(p.binDir, type), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path)} "$@"\n`, { mode: 0o755 });
      } else {
        await symlink(path, join(p.binDir, type));
      }
    }
    await must("ip", ["netns", "add", p.netns]);
    await must("ip", ["-n", p.netns, "link", "set", "lo", "up"]);
  }

  async #launch(): Promise<void> {
    const p = this.paths;
    const log = await open(p.log, "a");
    try {
      // nsenter execs containerd: the PID is containerd's. detached: its own session (setsid), so
      // a signal to the test's process group never reaches it; it is stopped by PID only.
      const child = spawn("nsenter", [`--net=/run/netns/${p.netns}`, "containerd", "--config", p.config, "--log-level", "info"], {
        detached: true,
        stdio: ["ignore", log.fd, log.fd],
      });
      this.#process = child;
      const spawned = await new Promise<number>((resolve, reject) => {
        child.once("spawn", () => resolve(child.pid ?? 0));
        child.once("error", reject);
      });
      child.unref();
      await writeFile(p.pidFile, String(spawned));
    } finally {
      await log.close();
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.#process.exitCode !== null || this.#process.signalCode !== null) {
        throw new Error(`containerd exited (${this.#process.exitCode ?? this.#process.signalCode}) while starting: ${await this.logTail()}`);
      }
      if (existsSync(p.socket)) {
        const version = await this.cri.version().catch(() => undefined);
        if (version) return;
      }
      if (Date.now() > deadline) throw new Error(`containerd did not answer on ${p.socket} within 30 s: ${await this.logTail()}`);
      await sleep(100);
    }
  }

  async #importPause(): Promise<void> {
    const p = this.paths;
    const archive = await buildPauseImage(join(p.dir, "image"), pauseReference(p));
    await must("ctr", ["--address", p.socket, "--namespace", K8S_NAMESPACE, "images", "import", archive]);
  }

  /** The last lines of containerd's log. */
  async logTail(lines = 20): Promise<string> {
    const text = await readFile(this.paths.log, "utf8").catch(() => "");
    return text.trim().split("\n").slice(-lines).join("\n");
  }

  /** containerd's PID (0 once stopped). */
  async pid(): Promise<number> {
    return containerdPid(this.paths);
  }

  /** Waits until the CRI reports a condition true (e.g. `NetworkReady` once a conf is in conf_dir). */
  async waitCondition(type: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const conditions = await this.cri.status();
      const condition = conditions.find((c) => c.type === type);
      if (condition?.status) return;
      if (Date.now() > deadline) throw new Error(`the CRI's ${type} is not true after ${timeoutMs} ms: ${JSON.stringify(condition ?? conditions)}`);
      await sleep(200);
    }
  }

  /** RunPodSandbox with the config kubelet would build for `pod`; the sandbox with its netns. */
  async runPod(pod: Pod, options: { attempt?: number; timeoutMs?: number } = {}): Promise<NodeSandbox> {
    const config = podSandboxConfig(pod, this.kubelet, options.attempt ?? 0);
    const id = await this.cri.runPodSandbox(config, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
    this.#ids.add(id);
    this.#cgroupParents.set(id, config.linux.cgroupParent);
    return { id, ...(await this.cri.sandboxDetails(id)) };
  }

  /**
   * What kubelet does when a pod is deleted: StopPodSandbox, RemovePodSandbox, then the pod's
   * cgroup (kubelet's, not the runtime's, in every hierarchy).
   */
  async removePod(id: string): Promise<void> {
    await this.cri.stopPodSandbox(id);
    await this.cri.removePodSandbox(id);
    const parent = this.#cgroupParents.get(id);
    if (parent) for (const mount of await cgroupMounts()) await rmdir(join(mount, parent)).catch(() => undefined);
  }

  /** Stops and removes everything of the node (idempotent; never throws); what is left (empty: all gone). */
  stop(): Promise<string[]> {
    this.#stopped ??= (async () => {
      this.cri.close();
      return teardown(this.paths, [...this.#ids], Math.min(this.#criTimeoutMs, 30_000), this.#confCleanup);
    })();
    return this.#stopped;
  }

  /** What of the node still exists (processes, mounts, netns, cgroups, caches, sockets, dir). */
  async leftovers(): Promise<string[]> {
    return leftoversOf(this.paths, [...new Set([...this.#ids, ...(await sandboxIdsOnDisk(this.paths))])]);
  }

  /** Sandbox ids this harness created through the CRI. */
  get sandboxIds(): string[] {
    return [...this.#ids];
  }
}
