import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expandTemplate, lookupResolver, templateProblems, templateResolver } from "./netns.js";
import { pickSandbox, podUidFromCgroup, procResolver } from "./proc-netns.js";

const UID = "3f1b2c4d-5e6f-4a1b-8c2d-0123456789ab";
const UID_SYSTEMD = UID.replaceAll("-", "_");
const HOST = "net:[4026531840]";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-netns-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("template resolver", () => {
  it.each([
    ["/var/run/netns/{namespace}_{name}", []],
    ["/run/netns/{uid}", []],
    ["/run/netns/{name}", ["must name the pod"]],
    ["/run/netns/{namespace}_{nom}", ["unknown placeholder {nom}", "must name the pod"]],
  ])("given %s, reports %j", (template, messages) => {
    const problems = templateProblems(template);
    expect(problems).toHaveLength(messages.length);
    messages.forEach((m, i) => expect(problems[i]!.message).toContain(m));
  });

  it("fills in namespace, name and uid, and needs a uid only when the template does", () => {
    expect(expandTemplate("/run/netns/{namespace}_{name}_{uid}", { namespace: "x", name: "a", uid: "u1" })).toEqual({ ok: true, value: "/run/netns/x_a_u1" });
    const missing = expandTemplate("/run/netns/{uid}", { namespace: "x", name: "a" });
    expect(missing.ok ? undefined : missing.error.code).toBe("netns.uid");
  });

  it("resolves existing paths with their identity, and names the missing ones", async () => {
    await writeFile(join(dir, "x_a"), "");
    const resolver = templateResolver(join(dir, "{namespace}_{name}"));
    const result = await resolver.resolve([
      { namespace: "x", name: "a" },
      { namespace: "x", name: "b" },
    ]);
    const a = result.get("x/a")!;
    expect(a.ok && a.value.path).toBe(join(dir, "x_a"));
    const b = result.get("x/b")!;
    expect(b.ok ? undefined : b.error).toMatchObject({ code: "netns.not-found", path: "x/b" });
  });

  it("gives a recreated namespace file a new identity", async () => {
    const resolver = templateResolver(join(dir, "{namespace}_{name}"));
    await writeFile(join(dir, "x_a"), "");
    const first = (await resolver.resolve([{ namespace: "x", name: "a" }])).get("x/a")!;
    // A new file renamed over the old one: both inodes exist at once, so they differ.
    await writeFile(join(dir, "x_a.new"), "");
    await rename(join(dir, "x_a.new"), join(dir, "x_a"));
    const second = (await resolver.resolve([{ namespace: "x", name: "a" }])).get("x/a")!;
    expect(first.ok && second.ok && first.value.id !== second.value.id).toBe(true);
  });
});

describe("lookup resolver (the CRI seam)", () => {
  it("stats the path a lookup names and reports lookups that fail or find nothing", async () => {
    await writeFile(join(dir, "sandbox"), "");
    const resolver = lookupResolver("test lookup", {
      netnsPathOf: async (pod) => {
        if (pod.name === "boom") throw new Error("socket closed");
        return pod.name === "a" ? join(dir, "sandbox") : undefined;
      },
    });
    const result = await resolver.resolve([
      { namespace: "x", name: "a" },
      { namespace: "x", name: "b" },
      { namespace: "x", name: "boom" },
    ]);
    expect(result.get("x/a")!.ok).toBe(true);
    expect(result.get("x/b")).toMatchObject({ ok: false, error: { code: "netns.not-found" } });
    expect(result.get("x/boom")).toMatchObject({ ok: false, error: { code: "netns.error", message: "test lookup: socket closed" } });
  });
});

describe("cgroup paths", () => {
  it.each([
    [`0::/kubepods/besteffort/pod${UID}/0123abcd`, UID],
    [`0::/kubepods/pod${UID}/0123abcd`, UID],
    [`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_SYSTEMD}.slice/cri-containerd-0123.scope`, UID],
    [`0::/kubepods.slice/kubepods-pod${UID_SYSTEMD}.slice/crio-0123.scope`, UID],
    [`12:pids:/kubepods/burstable/pod${UID}/abc\n11:memory:/kubepods/burstable/pod${UID}/abc`, UID],
    ["0::/system.slice/containerd.service", undefined],
    // Mixed separators are not a UID the kubelet writes.
    [`0::/kubepods/pod3f1b2c4d-5e6f_4a1b-8c2d-0123456789ab/x`, undefined],
  ])("given %s, finds %s", (content, uid) => {
    expect(podUidFromCgroup(content)).toBe(uid);
  });

  it("picks the netns most of the pod's processes share, never the host's", () => {
    expect(pickSandbox([{ pid: 50, netns: "net:[2]" }, { pid: 40, netns: "net:[1]" }, { pid: 60, netns: "net:[2]" }], HOST)).toEqual({ pid: 50, netns: "net:[2]" });
    expect(pickSandbox([{ pid: 50, netns: "net:[2]" }, { pid: 40, netns: "net:[1]" }], HOST)).toEqual({ pid: 40, netns: "net:[1]" });
    expect(pickSandbox([{ pid: 7, netns: HOST }], HOST)).toBeUndefined();
  });
});

describe("proc resolver over a fake /proc tree", () => {
  async function proc(pid: number, cgroup: string, netns: string): Promise<void> {
    await mkdir(join(dir, String(pid), "ns"), { recursive: true });
    await writeFile(join(dir, String(pid), "cgroup"), `${cgroup}\n`);
    await symlink(netns, join(dir, String(pid), "ns", "net"));
  }

  beforeEach(async () => {
    await proc(1, "0::/init.scope", HOST);
    await mkdir(join(dir, "self"));
    await writeFile(join(dir, "meminfo"), "");
  });

  it("finds the sandbox of a cgroupfs pod and of a systemd pod", async () => {
    const other = "0a0b0c0d-0000-4000-8000-000000000001";
    await proc(100, `0::/kubepods/besteffort/pod${UID}/pause`, "net:[4026532001]");
    await proc(130, `0::/kubepods/besteffort/pod${UID}/app`, "net:[4026532001]");
    await proc(200, `0::/kubepods.slice/kubepods-pod${other.replaceAll("-", "_")}.slice/cri-containerd-1.scope`, "net:[4026532002]");
    const resolver = procResolver({ procRoot: dir });
    const result = await resolver.resolve([
      { namespace: "x", name: "a", uid: UID },
      { namespace: "x", name: "b", uid: other.toUpperCase() },
    ]);
    expect(result.get("x/a")).toEqual({ ok: true, value: { path: join(dir, "100", "ns", "net"), id: "net:[4026532001]" } });
    expect(result.get("x/b")).toEqual({ ok: true, value: { path: join(dir, "200", "ns", "net"), id: "net:[4026532002]" } });
  });

  it("ignores a hostNetwork pod's processes and names pods it cannot find", async () => {
    await proc(300, `0::/kubepods/pod${UID}/app`, HOST);
    const resolver = procResolver({ procRoot: dir });
    const result = await resolver.resolve([
      { namespace: "x", name: "a", uid: UID },
      { namespace: "x", name: "b", uid: "0a0b0c0d-0000-4000-8000-000000000009" },
      { namespace: "x", name: "c" },
    ]);
    expect(result.get("x/a")).toMatchObject({ ok: false, error: { code: "netns.host" } });
    expect(result.get("x/b")).toMatchObject({ ok: false, error: { code: "netns.not-found" } });
    expect(result.get("x/c")).toMatchObject({ ok: false, error: { code: "netns.uid" } });
  });

  it("follows a sandbox that was replaced (new pause process, new netns)", async () => {
    await proc(100, `0::/kubepods/pod${UID}/pause`, "net:[4026532001]");
    const resolver = procResolver({ procRoot: dir });
    const first = await resolver.resolve([{ namespace: "x", name: "a", uid: UID }]);
    expect(first.get("x/a")).toMatchObject({ ok: true, value: { id: "net:[4026532001]" } });
    await rm(join(dir, "100"), { recursive: true });
    await proc(400, `0::/kubepods/pod${UID}/pause`, "net:[4026532077]");
    const second = await resolver.resolve([{ namespace: "x", name: "a", uid: UID }]);
    expect(second.get("x/a")).toEqual({ ok: true, value: { path: join(dir, "400", "ns", "net"), id: "net:[4026532077]" } });
  });

  it("finds this very process's netns through the real /proc when asked by a uid in its cgroup", async () => {
    // The real /proc is readable and holds no pod of a random uid: a clean not-found, no throw.
    const result = await procResolver().resolve([{ namespace: "x", name: "a", uid: "0a0b0c0d-0000-4000-8000-00000000abcd" }]);
    expect(result.get("x/a")).toMatchObject({ ok: false, error: { code: "netns.not-found" } });
  });
});
