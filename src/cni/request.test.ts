import { describe, expect, it } from "vitest";
import { errorAnswer, parseCniCall, resultAnswer } from "./request.js";

const b64 = (value: unknown): string => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64");
const CONF = { cniVersion: "0.4.0", name: "nadguard", type: "nadguard-cni", daemonSocketDir: "/run/nadguard" };

// What the shim forwards on an ADD from containerd: its whole environment and its stdin.
const ENV = {
  PATH: "/usr/sbin:/usr/bin",
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "4f1d3c",
  CNI_NETNS: "/var/run/netns/cni-1234",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
  CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=tenant-a;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=4f1d3c;K8S_POD_UID=9f0c-11",
};

describe("the shim's request", () => {
  it("reads a call in Multus' wire format: environment, CNI_ARGS with the pod, the config", () => {
    expect(parseCniCall({ env: ENV, config: b64(CONF) })).toEqual({
      ok: true,
      value: {
        command: "ADD",
        containerId: "4f1d3c",
        netns: "/var/run/netns/cni-1234",
        ifname: "eth0",
        path: ["/opt/cni/bin", "/usr/lib/cni"],
        args: [
          ["IgnoreUnknown", "1"],
          ["K8S_POD_NAMESPACE", "tenant-a"],
          ["K8S_POD_NAME", "web"],
          ["K8S_POD_INFRA_CONTAINER_ID", "4f1d3c"],
          ["K8S_POD_UID", "9f0c-11"],
        ],
        k8s: { namespace: "tenant-a", name: "web", uid: "9f0c-11", infraContainerId: "4f1d3c" },
        config: CONF,
        cniVersion: "0.4.0",
        env: { PATH: "/usr/sbin:/usr/bin" },
      },
    });
  });

  it("accepts a DEL with an empty CNI_NETNS, as containerd sends after the sandbox is gone", () => {
    const call = parseCniCall({ env: { ...ENV, CNI_COMMAND: "DEL", CNI_NETNS: "" }, config: b64(CONF) });
    expect(call.ok && call.value.netns).toBe("");
  });

  it.each([
    [{ env: { ...ENV, CNI_COMMAND: "" } }, 4, "required env variables [CNI_COMMAND] missing"],
    [{ env: { ...ENV, CNI_COMMAND: "ATTACH" } }, 4, "unknown CNI_COMMAND: ATTACH"],
    [{ env: { ...ENV, CNI_NETNS: "", CNI_IFNAME: "" } }, 4, "required env variables [CNI_NETNS,CNI_IFNAME] missing"],
    [{ env: { ...ENV, CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME" } }, 4, 'CNI_ARGS: "K8S_POD_NAME" is not a KEY=VALUE pair'],
    [{ config: b64("{") }, 6, expect.stringMatching(/^the network config \(stdin\) is not JSON: Expected property name/)],
    [{ config: b64({ name: "x", type: "y" }) }, 7, 'the network config (stdin) has no cniVersion (e.g. "1.0.0")'],
    [{ config: "not base64!" }, 6, "the request is not a CNI call: config: must be the shim's stdin, base64"],
  ])("refuses %j with code %i", (override, code, msg) => {
    expect(parseCniCall({ env: ENV, config: b64(CONF), ...override })).toEqual({ ok: false, error: { code, msg } });
  });

  it("answers ADD with the result in 1.0.0 under Result, and errors as 400 with the CNI error object", () => {
    const answer = resultAnswer({ cniVersion: "0.4.0", ips: [{ version: "4", address: "198.18.0.2/24" }], dns: {} });
    expect(answer).toEqual({ status: 200, body: JSON.stringify({ Result: { cniVersion: "1.0.0", ips: [{ address: "198.18.0.2/24" }] } }) });
    expect(errorAnswer({ code: 7, msg: "bad", details: "d", plugin: "bridge" }, "0.4.0")).toEqual({ status: 400, body: '{"cniVersion":"0.4.0","code":7,"msg":"bad","details":"d"}' });
  });
});
