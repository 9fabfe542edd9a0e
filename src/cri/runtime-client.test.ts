// The CRI client against a gRPC server speaking the same RuntimeService subset on a unix socket:
// requests arrive with the field names and values a runtime reads, replies are checked (an
// unreadable one is an error naming the call and the field), and a runtime's error reaches the
// caller as `CRI <call> failed (<status>): <runtime's message>`. The real runtime is covered by
// test/e2e/containerd-node.test.ts.
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CriClient, CriError, readSandboxInfo, runtimeService } from "./runtime-client.js";

type Handler = (request: Record<string, unknown>) => { reply?: unknown; error?: { code: grpc.status; details: string } };

const dir = mkdtempSync(join(tmpdir(), "nadguard-cri-"));
const socket = join(dir, "runtime.sock");
const seen: { call: string; request: Record<string, unknown> }[] = [];
const handlers: Record<string, Handler> = {};
let server: grpc.Server;

function serve(call: string): grpc.handleUnaryCall<Record<string, unknown>, unknown> {
  return (unary, callback) => {
    seen.push({ call, request: unary.request });
    const outcome = handlers[call]?.(unary.request) ?? { error: { code: grpc.status.UNIMPLEMENTED, details: `${call} not set up` } };
    if (outcome.error) callback({ code: outcome.error.code, details: outcome.error.details, name: "", message: outcome.error.details, metadata: new grpc.Metadata() });
    else callback(null, outcome.reply);
  };
}

beforeAll(async () => {
  server = new grpc.Server();
  const calls = ["Version", "Status", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus", "ListPodSandbox"];
  server.addService(runtimeService().service, Object.fromEntries(calls.map((c) => [c, serve(c)])));
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
});

afterAll(() => {
  server.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

const SPEC_INFO = JSON.stringify({
  pid: 4242,
  processStatus: "running",
  runtimeSpec: { linux: { namespaces: [{ type: "pid" }, { type: "network", path: "/var/run/state/netns/cni-1234" }, { type: "ipc" }] } },
});

describe("CriClient", () => {
  const client = new CriClient(socket, { timeoutMs: 5_000 });
  afterAll(() => client.close());

  it("Version asks for v1 and returns the runtime's answer", async () => {
    handlers["Version"] = () => ({ reply: { version: "0.1.0", runtimeName: "containerd", runtimeVersion: "1.6.20", runtimeApiVersion: "v1" } });
    expect(await client.version()).toEqual({ version: "0.1.0", runtimeName: "containerd", runtimeVersion: "1.6.20", runtimeApiVersion: "v1" });
    expect(seen.at(-1)).toEqual({ call: "Version", request: { version: "v1" } });
  });

  it("RunPodSandbox sends the config with enum names and maps intact; returns the id", async () => {
    handlers["RunPodSandbox"] = () => ({ reply: { podSandboxId: "a".repeat(64) } });
    const id = await client.runPodSandbox({
      metadata: { name: "web", namespace: "team-a", uid: "u-1", attempt: 1 },
      hostname: "web",
      logDirectory: "/var/log/pods/team-a_web_u-1",
      dnsConfig: { servers: ["198.18.255.10"], searches: ["team-a.svc.cluster.local"], options: ["ndots:5"] },
      portMappings: [{ protocol: "UDP", containerPort: 53, hostPort: 5353, hostIp: "" }],
      labels: { app: "web" },
      annotations: { "k8s.v1.cni.cncf.io/networks": "nets/blue" },
      linux: { cgroupParent: "/kubepods/besteffort/podu-1", securityContext: { namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" }, privileged: false }, sysctls: {} },
    });
    expect(id).toBe("a".repeat(64));
    const { request } = seen.at(-1)!;
    expect(request["runtimeHandler"]).toBe("");
    expect(request["config"]).toMatchObject({
      metadata: { name: "web", namespace: "team-a", uid: "u-1", attempt: 1 },
      portMappings: [{ protocol: "UDP", containerPort: 53, hostPort: 5353, hostIp: "" }],
      annotations: { "k8s.v1.cni.cncf.io/networks": "nets/blue" },
      linux: { cgroupParent: "/kubepods/besteffort/podu-1", securityContext: { namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" } } },
    });
  });

  it("a runtime error names the call, the gRPC status and the runtime's message", async () => {
    handlers["RunPodSandbox"] = () => ({ error: { code: grpc.status.UNKNOWN, details: 'failed to setup network for sandbox "abc": plugin type="bridge" failed (add): boom' } });
    const failure = client.runPodSandbox({} as never).catch((e: unknown) => e);
    const error = (await failure) as CriError;
    expect(error).toBeInstanceOf(CriError);
    expect(error.message).toBe('CRI RunPodSandbox failed (UNKNOWN): failed to setup network for sandbox "abc": plugin type="bridge" failed (add): boom');
    expect(error.code).toBe(grpc.status.UNKNOWN);
  });

  it("ListPodSandbox passes the filter; replies come back with their states", async () => {
    handlers["ListPodSandbox"] = () => ({
      reply: { items: [{ id: "b".repeat(64), metadata: { name: "web", uid: "u-1", namespace: "team-a", attempt: 0 }, state: "SANDBOX_NOTREADY", createdAt: "1700000000000000000", labels: {}, annotations: {} }] },
    });
    const items = await client.listPodSandbox({ state: "SANDBOX_NOTREADY", labelSelector: { app: "web" } });
    expect(items).toEqual([{ id: "b".repeat(64), metadata: { name: "web", uid: "u-1", namespace: "team-a", attempt: 0 }, state: "SANDBOX_NOTREADY", createdAt: "1700000000000000000", labels: {}, annotations: {} }]);
    expect(seen.at(-1)!.request).toEqual({ filter: { id: "", state: { state: "SANDBOX_NOTREADY" }, labelSelector: { app: "web" } } });
  });

  it("sandboxDetails asks for verbose status and reads the netns and pause pid from info", async () => {
    handlers["PodSandboxStatus"] = () => ({
      reply: {
        status: { id: "c".repeat(64), metadata: { name: "web", uid: "u-1", namespace: "team-a", attempt: 0 }, state: "SANDBOX_READY", createdAt: "1", network: { ip: "198.18.0.5", additionalIps: [{ ip: "fd00::5" }] }, labels: {}, annotations: {} },
        info: { info: SPEC_INFO },
      },
    });
    const details = await client.sandboxDetails("c".repeat(64));
    expect(seen.at(-1)!.request).toEqual({ podSandboxId: "c".repeat(64), verbose: true });
    expect(details.netnsPath).toBe("/var/run/state/netns/cni-1234");
    expect(details.pid).toBe(4242);
    expect(details.status.network).toEqual({ ip: "198.18.0.5", additionalIps: [{ ip: "fd00::5" }] });
  });

  it("a reply it cannot read is an error naming the call and the field", async () => {
    handlers["Status"] = () => ({ reply: { status: { conditions: [{ type: "RuntimeReady", status: true, reason: "", message: "" }, { type: "NetworkReady", status: false, reason: "NetworkPluginNotReady", message: "cni plugin not initialized" }] } } });
    expect(await client.status()).toEqual([
      { type: "RuntimeReady", status: true, reason: "", message: "" },
      { type: "NetworkReady", status: false, reason: "NetworkPluginNotReady", message: "cni plugin not initialized" },
    ]);
    handlers["RunPodSandbox"] = () => ({ reply: { podSandboxId: "" } });
    await expect(client.runPodSandbox({} as never)).rejects.toThrow(/^CRI RunPodSandbox failed \(INTERNAL\): unreadable reply at podSandboxId: /);
  });

  it("a socket nobody listens on fails with UNAVAILABLE within the deadline", async () => {
    const nobody = new CriClient(join(dir, "absent.sock"), { timeoutMs: 1_000 });
    try {
      await expect(nobody.version()).rejects.toThrow(/^CRI Version failed \((UNAVAILABLE|DEADLINE_EXCEEDED)\): /);
    } finally {
      nobody.close();
    }
  });
});

describe("readSandboxInfo", () => {
  it("a sandbox in the node's netns has no netns path", () => {
    expect(readSandboxInfo({ info: JSON.stringify({ pid: 7, runtimeSpec: { linux: { namespaces: [{ type: "pid" }] } } }) })).toEqual({ netnsPath: "", pid: 7 });
  });

  it.each([
    [{}, 'verbose PodSandboxStatus has no "info" entry (keys: none)'],
    [{ info: "{" }, /^verbose PodSandboxStatus info\["info"\] is not JSON: /],
    [{ info: JSON.stringify({ pid: 1, runtimeSpec: {} }) }, /^verbose PodSandboxStatus info\["info"\] at runtimeSpec\.linux: /],
  ])("refuses %j", (info, message) => {
    expect(() => readSandboxInfo(info)).toThrow(message);
  });
});
