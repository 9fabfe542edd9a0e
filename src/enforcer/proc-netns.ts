// Strategy (b) of netns resolution: on a real node, without a container-runtime client, find the
// pod sandbox by scanning /proc (the enforcer runs in the host PID namespace). The kubelet puts a
// pod's containers, pause included, in a cgroup whose path carries the pod UID:
//   cgroupfs driver: /kubepods/besteffort/pod3f1b2c4d-…/<container id>
//   systemd driver:  /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3f1b2c4d_….slice/cri-containerd-<id>.scope
// The processes of one pod share one network namespace (the sandbox's); we pick the namespace most
// of them are in (ties: the one holding the lowest PID, usually pause), never the host's, and
// enter it through /proc/<lowest PID in it>/ns/net.
import { readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { fail, ok } from "../api/errors.js";
import { podRefKey, type NetnsLookup, type NetnsResolver, type PodRef } from "./netns.js";

export interface ProcResolverOptions {
  /** Default `/proc`; a fake tree in tests. */
  readonly procRoot?: string;
  /** The host's netns link text (`net:[4026531840]`); default: what `<procRoot>/1/ns/net` points to. */
  readonly hostNetns?: string;
}

const HEX = "[0-9a-f]";
const UID_IN_CGROUP = new RegExp(`pod(${HEX}{8}([-_])${HEX}{4}\\2${HEX}{4}\\2${HEX}{4}\\2${HEX}{12})(?:\\.slice)?(?:/|$)`);

/** The pod UID a cgroup file's content names (any hierarchy line), dashes restored; undefined when none. */
export function podUidFromCgroup(content: string): string | undefined {
  for (const line of content.split("\n")) {
    const path = line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
    const match = UID_IN_CGROUP.exec(path.toLowerCase());
    if (match) return match[1]!.replaceAll("_", "-");
  }
  return undefined;
}

interface Member {
  readonly pid: number;
  readonly netns: string;
}

async function readOptional(read: () => Promise<string>): Promise<string | undefined> {
  try {
    return await read();
  } catch {
    // The process exited while we looked, or is not ours to read: it is not a sandbox we can use.
    return undefined;
  }
}

/** Every process of every pod: pod UID → its processes with their netns link text. */
export async function scanProc(procRoot = "/proc"): Promise<Map<string, Member[]>> {
  const pids = (await readdir(procRoot)).filter((name) => /^\d+$/.test(name)).map(Number);
  const byUid = new Map<string, Member[]>();
  await Promise.all(
    pids.map(async (pid) => {
      const cgroup = await readOptional(() => readFile(join(procRoot, String(pid), "cgroup"), "utf8"));
      const uid = cgroup === undefined ? undefined : podUidFromCgroup(cgroup);
      if (uid === undefined) return;
      const netns = await readOptional(() => readlink(join(procRoot, String(pid), "ns", "net")));
      if (netns === undefined) return;
      const list = byUid.get(uid) ?? [];
      list.push({ pid, netns });
      byUid.set(uid, list);
    }),
  );
  return byUid;
}

/** The sandbox among a pod's processes (see the file comment); undefined when all are in the host netns. */
export function pickSandbox(members: readonly Member[], hostNetns: string | undefined): Member | undefined {
  const groups = new Map<string, Member[]>();
  for (const m of members) {
    if (m.netns === hostNetns) continue;
    groups.set(m.netns, [...(groups.get(m.netns) ?? []), m]);
  }
  let best: Member[] | undefined;
  const lowest = (g: Member[]): number => Math.min(...g.map((m) => m.pid));
  for (const group of groups.values()) {
    if (!best || group.length > best.length || (group.length === best.length && lowest(group) < lowest(best))) best = group;
  }
  if (!best) return undefined;
  const pid = lowest(best);
  return best.find((m) => m.pid === pid);
}

const CACHE_IDLE_MS = 10 * 60_000;

/** Strategy (b): the /proc scan. One scan per `resolve` call, skipped when every cached sandbox is still there. */
export function procResolver(options: ProcResolverOptions = {}): NetnsResolver {
  const procRoot = options.procRoot ?? "/proc";
  const cache = new Map<string, Member & { used: number }>();

  const stillThere = async (uid: string, m: Member): Promise<boolean> => {
    const [cgroup, netns] = await Promise.all([
      readOptional(() => readFile(join(procRoot, String(m.pid), "cgroup"), "utf8")),
      readOptional(() => readlink(join(procRoot, String(m.pid), "ns", "net"))),
    ]);
    return netns === m.netns && cgroup !== undefined && podUidFromCgroup(cgroup) === uid;
  };

  return {
    description: `proc ${procRoot}`,
    async resolve(pods: readonly PodRef[]) {
      const out = new Map<string, NetnsLookup>();
      const hostNetns = options.hostNetns ?? (await readOptional(() => readlink(join(procRoot, "1", "ns", "net"))));
      const wanted = pods.filter((pod) => {
        if (pod.uid) return true;
        out.set(podRefKey(pod), fail({ code: "netns.uid", path: podRefKey(pod), message: "the pod has no metadata.uid: its sandbox cannot be found in /proc" }));
        return false;
      });
      const valid = await Promise.all(wanted.map(async (pod) => {
        const cached = cache.get(pod.uid!.toLowerCase());
        return cached !== undefined && (await stillThere(pod.uid!.toLowerCase(), cached));
      }));
      let scanned: Map<string, Member[]> | undefined;
      if (valid.some((v) => !v)) {
        try {
          scanned = await scanProc(procRoot);
        } catch (error) {
          for (const pod of wanted) out.set(podRefKey(pod), fail({ code: "netns.error", path: podRefKey(pod), message: `cannot scan ${procRoot}: ${(error as Error).message}` }));
          return out;
        }
      }
      wanted.forEach((pod, i) => {
        const uid = pod.uid!.toLowerCase();
        if (!valid[i]) {
          const members = scanned?.get(uid) ?? [];
          const sandbox = pickSandbox(members, hostNetns);
          if (sandbox) cache.set(uid, { ...sandbox, used: Date.now() });
          else cache.delete(uid);
          if (!sandbox) {
            const message = members.length > 0 ? "every process of the pod is in the host network namespace" : `no process in ${procRoot} belongs to pod uid ${uid}`;
            out.set(podRefKey(pod), fail({ code: members.length > 0 ? "netns.host" : "netns.not-found", path: podRefKey(pod), message }));
            return;
          }
        }
        const sandbox = cache.get(uid)!;
        sandbox.used = Date.now();
        out.set(podRefKey(pod), ok({ path: join(procRoot, String(sandbox.pid), "ns", "net"), id: sandbox.netns }));
      });
      // Pods asked about in no call for a while are gone: forget their sandboxes.
      for (const [uid, m] of cache) if (Date.now() - m.used > CACHE_IDLE_MS) cache.delete(uid);
      return out;
    },
  };
}
