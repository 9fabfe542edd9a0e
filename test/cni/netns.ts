// Network namespaces for the src/cni suites that run the REAL plugins of Debian's
// containernetworking-plugins (/usr/lib/cni): a "switch" netns where the plugins run (bridges and
// macvlan parents are made there, never in the host's namespace; `mvp` is a macvlan parent) and
// "pod" netns they attach to. Names carry the run's prefix (test/e2e/sys.ts), the temp dir the
// e2e naming, so that cleanupStale of a later run removes what a killed run left; addresses come
// from 198.18.0.0/15 and fd00::/8; host-local keeps its leases in the temp dir. Nothing is sent:
// the suites read state back from the kernel and the disk.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NetworkConfigList, parseNetworkConfig } from "../../src/cni/index.js";
import { cleanupStale, must, newPrefix, run } from "../e2e/sys.js";

export const CNI_DIR = "/usr/lib/cni";
export const IS_ROOT = process.getuid?.() === 0;

export interface IpLink {
  readonly ifname: string;
  readonly address: string;
  readonly flags: string[];
  readonly addr_info: { family: string; local: string; prefixlen: number }[];
}

/** A config read as src/cni reads it; throws on a bad one (a test's own input). */
export function list(config: unknown): NetworkConfigList {
  const parsed = parseNetworkConfig(config, "test");
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return parsed.value;
}

/** Addresses of a link without link-local ones, `addr/prefix`. */
export function globalAddresses(link: IpLink | undefined): string[] {
  return (link?.addr_info ?? []).filter((a) => !a.local.startsWith("fe80")).map((a) => `${a.local}/${a.prefixlen}`);
}

export class CniNetns {
  readonly prefix = newPrefix();
  readonly switchNetns = `${this.prefix}sw`;
  dir = "";
  #pods: string[] = [];

  static async create(): Promise<CniNetns> {
    await cleanupStale();
    const lab = new CniNetns();
    try {
      lab.dir = await mkdtemp(join(tmpdir(), `nadguard-e2e-${lab.prefix}`));
      await must("ip", ["netns", "add", lab.switchNetns]);
      await must("ip", ["-n", lab.switchNetns, "link", "add", "mvp", "type", "veth", "peer", "name", "mvq"]);
      await must("ip", ["-n", lab.switchNetns, "link", "set", "mvp", "up"]);
      await must("ip", ["-n", lab.switchNetns, "link", "set", "mvq", "up"]);
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  get switchPath(): string {
    return `/run/netns/${this.switchNetns}`;
  }

  /** host-local's data dir. */
  get dataDir(): string {
    return join(this.dir, "ipam");
  }

  /** A new pod netns; its path. */
  async addPod(name: string): Promise<string> {
    const netns = `${this.prefix}${name}`;
    await must("ip", ["netns", "add", netns]);
    this.#pods.push(netns);
    return `/run/netns/${netns}`;
  }

  /** A pod's interfaces as iproute2 reads them back from the kernel. */
  async links(podPath: string): Promise<IpLink[]> {
    return JSON.parse(await must("ip", ["-n", podPath.slice("/run/netns/".length), "-j", "addr", "show"])) as IpLink[];
  }

  async linkNames(podPath: string): Promise<string[]> {
    return (await this.links(podPath)).map((l) => l.ifname).sort();
  }

  /** host-local's leases of a network: one file per address. */
  async leases(network: string): Promise<string[]> {
    const files = await readdir(join(this.dataDir, network)).catch(() => [] as string[]);
    return files.filter((f) => /^[0-9a-f.:]+$/.test(f)).sort();
  }

  /** Removes every namespace and the temp dir. Never throws. */
  async destroy(): Promise<void> {
    for (const netns of [...this.#pods, this.switchNetns]) await run("ip", ["netns", "delete", netns]);
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
