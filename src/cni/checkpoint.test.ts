import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { deviceAssigner, parseDeviceCheckpoint, podDevices, readDeviceCheckpoint } from "./checkpoint.js";

// As the kubelet (1.20 and later) writes it: DeviceIDs by NUMA node, AllocResp base64.
const CHECKPOINT = JSON.stringify({
  Data: {
    PodDeviceEntries: [
      { PodUID: "uid-a", ContainerName: "app", ResourceName: "intel.com/sriov_netdevice", DeviceIDs: { "1": ["0000:3b:02.3"], "0": ["0000:3b:02.1"] }, AllocResp: "CgA=" },
      { PodUID: "uid-a", ContainerName: "sidecar", ResourceName: "intel.com/sriov_netdevice", DeviceIDs: { "0": ["0000:3b:02.2"] }, AllocResp: "CgA=" },
      { PodUID: "uid-a", ContainerName: "app", ResourceName: "example.com/gpu", DeviceIDs: { "-1": ["gpu-1"] }, AllocResp: "CgA=" },
      { PodUID: "uid-b", ContainerName: "app", ResourceName: "intel.com/sriov_netdevice", DeviceIDs: { "0": ["0000:3b:02.0"] }, AllocResp: "CgA=" },
    ],
    RegisteredDevices: { "intel.com/sriov_netdevice": ["0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3"] },
  },
  Checksum: 1234567890,
});

describe("device-plugin checkpoint", () => {
  it("gives a pod's delegates its devices of a resource in sorted order, across its containers", () => {
    const entries = parseDeviceCheckpoint(CHECKPOINT, "cp");
    if (!entries.ok) throw new Error(JSON.stringify(entries.error));
    const devices = podDevices(entries.value, "uid-a");
    expect(devices).toEqual(
      new Map([
        ["intel.com/sriov_netdevice", ["0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3"]],
        ["example.com/gpu", ["gpu-1"]],
      ]),
    );
    const next = deviceAssigner(devices);
    expect([next("intel.com/sriov_netdevice"), next("example.com/gpu"), next("intel.com/sriov_netdevice"), next("intel.com/sriov_netdevice"), next("intel.com/sriov_netdevice")]).toEqual([
      "0000:3b:02.1",
      "gpu-1",
      "0000:3b:02.2",
      "0000:3b:02.3",
      undefined,
    ]);
    expect(podDevices(entries.value, "uid-unknown")).toEqual(new Map());
  });

  it("reads the list form of DeviceIDs that kubelets before 1.20 wrote", () => {
    const old = JSON.stringify({ Data: { PodDeviceEntries: [{ PodUID: "u", ContainerName: "c", ResourceName: "r", DeviceIDs: ["b", "a"], AllocResp: null }] }, Checksum: 1 });
    const entries = parseDeviceCheckpoint(old, "cp");
    expect(entries.ok && podDevices(entries.value, "u")).toEqual(new Map([["r", ["a", "b"]]]));
  });

  it("refuses a damaged file naming it and the entry", () => {
    expect(parseDeviceCheckpoint("{", "/cp")).toEqual({ ok: false, error: [{ code: "checkpoint.json", path: "/cp", message: expect.stringContaining("is not valid JSON") }] });
    const bad = JSON.stringify({ Data: { PodDeviceEntries: [{ PodUID: "u", ContainerName: "c", ResourceName: "r", DeviceIDs: "0000:3b:02.1" }] } });
    expect(parseDeviceCheckpoint(bad, "/cp")).toEqual({
      ok: false,
      error: [{ code: "checkpoint.schema", path: "/cp: Data.PodDeviceEntries[0].DeviceIDs", message: 'must be {"<NUMA node>": [device IDs]} or a list of device IDs' }],
    });
  });

  it("reads a missing file as no devices, an unreadable one as an error naming it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nadguard-checkpoint-"));
    try {
      expect(await readDeviceCheckpoint(join(dir, "none"))).toEqual({ ok: true, value: [] });
      await writeFile(join(dir, "cp"), CHECKPOINT);
      const read = await readDeviceCheckpoint(join(dir, "cp"));
      expect(read.ok && read.value).toHaveLength(4);
      expect(await readDeviceCheckpoint(dir)).toEqual({ ok: false, error: [{ code: "checkpoint.read", path: dir, message: expect.stringContaining("EISDIR") }] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
