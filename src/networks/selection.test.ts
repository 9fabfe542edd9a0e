import { describe, expect, it } from "vitest";
import type { Problem } from "../api/errors.js";
import { describeElement, NETWORKS_ANNOTATION_PATH, parseNetworkSelections } from "./selection.js";

const P = NETWORKS_ANNOTATION_PATH;
const POD_NS = "team-a";

/** `ns/name iface` per attachment: what a user sees in the pod. */
function summary(annotation: string): string[] {
  const result = parseNetworkSelections(annotation, POD_NS);
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.error)}`);
  return result.value.map((a) => `${a.key} ${a.interfaceName}`);
}

function problems(annotation: string): Problem[] {
  const result = parseNetworkSelections(annotation, POD_NS);
  if (result.ok) throw new Error(`expected problems, got ${JSON.stringify(result.value)}`);
  return result.error;
}

function jsonMessage(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("valid JSON");
}

describe("parseNetworkSelections, comma form", () => {
  it.each<[string, string[]]>([
    ["macvlan", ["team-a/macvlan net1"]],
    ["tenant-b/sriov", ["tenant-b/sriov net1"]],
    ["tenant-b/sriov@fast0", ["tenant-b/sriov fast0"]],
    // An explicitly named element still uses up its index.
    ["a@foo,b", ["team-a/a foo", "team-a/b net2"]],
    ["a, b ,c", ["team-a/a net1", "team-a/b net2", "team-a/c net3"]],
    ["  x/a@if1 ,\tb\n", ["x/a if1", "team-a/b net2"]],
    // Multus trims each part around '/' and '@' as well.
    ["ns / a @ x", ["ns/a x"]],
    // The same NAD twice is two attachments.
    ["a,a", ["team-a/a net1", "team-a/a net2"]],
    ["a@net2,b@net1", ["team-a/a net2", "team-a/b net1"]],
    ["a,b@x,c", ["team-a/a net1", "team-a/b x", "team-a/c net3"]],
    ["1a/2b@3c", ["1a/2b 3c"]],
    ["a@abcdefghijklmno", ["team-a/a abcdefghijklmno"]],
    [`${"n".repeat(63)}/${"m".repeat(63)}`, [`${"n".repeat(63)}/${"m".repeat(63)} net1`]],
    ["", []],
  ])("given %j, attaches %j", (annotation, expected) => {
    expect(summary(annotation)).toEqual(expected);
  });

  it("resolves a name without namespace to the pod's namespace, never default", () => {
    const result = parseNetworkSelections("a,ns/b@x", "pods-here");
    expect(result).toEqual({
      ok: true,
      value: [
        {
          selection: { index: 0, written: "a", form: "comma", namespace: "pods-here", name: "a", namespaceExplicit: false },
          key: "pods-here/a",
          interfaceName: "net1",
        },
        {
          selection: { index: 1, written: "ns/b@x", form: "comma", namespace: "ns", name: "b", namespaceExplicit: true, interfaceRequest: "x" },
          key: "ns/b",
          interfaceName: "x",
        },
      ],
    });
  });

  const e = (index: number, written: string): string => describeElement(index - 1, written, "comma");
  const LABEL = "is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)";

  it.each<[string, string, string]>([
    ["a,,b", "selection.empty-element", `${e(2, "")} is empty; remove the extra comma`],
    ["a,", "selection.empty-element", `${e(2, "")} is empty; remove the trailing comma`],
    [",a", "selection.empty-element", `${e(1, "")} is empty; remove the leading comma`],
    ["a, ,b", "selection.empty-element", 'element 2 ("") is empty; remove the extra comma'],
    [
      " , ,",
      "selection.empty-element",
      "names no network, only commas and whitespace; list networks as name, namespace/name or namespace/name@interface, or remove the annotation",
    ],
    [
      "   ",
      "selection.empty-element",
      "names no network, only whitespace; list networks as name, namespace/name or namespace/name@interface, or remove the annotation",
    ],
    ["a/b/c", "selection.too-many-slashes", `element 1 ("a/b/c") has more than one '/'; write name, namespace/name or namespace/name@interface`],
    ["a@b@c", "selection.too-many-ats", `element 1 ("a@b@c") has more than one '@'; write name@interface or namespace/name@interface`],
    ["/a", "selection.bad-namespace", `element 1 ("/a") has an empty namespace before '/'; write name or namespace/name`],
    ["Team/a", "selection.bad-namespace", `element 1 ("Team/a") has namespace "Team", which has upper-case letters; Kubernetes names are lower-case`],
    ["a@b/c", "selection.bad-namespace", `element 1 ("a@b/c") has namespace "a@b", which ${LABEL}`],
    [
      `${"x".repeat(64)}/a`,
      "selection.bad-namespace",
      `element 1 ("${"x".repeat(59)}…") has namespace "${"x".repeat(59)}…", which is 64 characters long; a DNS-1123 label has at most 63`,
    ],
    ["ns/", "selection.bad-name", `element 1 ("ns/") has an empty network name; write name, namespace/name or namespace/name@interface`],
    ["@net1", "selection.bad-name", `element 1 ("@net1") has an empty network name before '@'; write name, namespace/name or namespace/name@interface`],
    ["mac_vlan", "selection.bad-name", `element 1 ("mac_vlan") names network "mac_vlan", which ${LABEL}`],
    ["-a", "selection.bad-name", `element 1 ("-a") names network "-a", which ${LABEL}`],
    ["a.b", "selection.bad-name", `element 1 ("a.b") names network "a.b", which ${LABEL}`],
    ['a"b', "selection.bad-name", `element 1 ("a\\"b") names network "a\\"b", which ${LABEL}`],
    ["a@", "selection.bad-interface", `element 1 ("a@") has an empty interface name after '@'; remove the '@' or name the interface`],
    [
      "a@abcdefghijklmnop",
      "selection.bad-interface",
      `element 1 ("a@abcdefghijklmnop") requests interface "abcdefghijklmnop", which is 16 characters long; Linux allows at most 15`,
    ],
    ["a@eth0:1", "selection.bad-interface", `element 1 ("a@eth0:1") requests interface "eth0:1", which contains ':'`],
    ["a@e th", "selection.bad-interface", `element 1 ("a@e th") requests interface "e th", which contains whitespace`],
    ["a@..", "selection.bad-interface", `element 1 ("a@..") requests interface "..", which is '..'`],
    [
      "a@Net_1",
      "selection.bad-interface",
      `element 1 ("a@Net_1") requests interface "Net_1", which Multus rejects in the comma form (lower-case letters, digits and '-', starting and ending with a letter or digit); request it with "interface" in the JSON form`,
    ],
    [
      "a@x,b@x",
      "selection.duplicate-interface",
      `element 2 ("b@x") gets interface "x", the same as element 1 ("a@x"); request a different interface for one of them`,
    ],
    [
      "a@net2,b",
      "selection.duplicate-interface",
      `element 2 ("b") gets interface "net2" (automatic, from its position), the same as element 1 ("a@net2"); request a different interface for one of them`,
    ],
    [
      "a,b@net1",
      "selection.duplicate-interface",
      `element 2 ("b@net1") gets interface "net1", the same as element 1 ("a"); request a different interface for one of them`,
    ],
  ])("rejects %j with %s", (annotation, code, message) => {
    expect(problems(annotation)).toEqual([{ code, path: P, message }]);
  });

  it("reports every problem of the annotation, in order, then the cross-element ones", () => {
    expect(problems("Bad, tenant-b/sriov@net1,,x/y/z,ok@net3,c@net1").map((p) => `${p.code}: ${p.message}`)).toEqual([
      'selection.bad-name: element 1 ("Bad") names network "Bad", which has upper-case letters; Kubernetes names are lower-case',
      'selection.empty-element: element 3 ("") is empty; remove the extra comma',
      `selection.too-many-slashes: element 4 ("x/y/z") has more than one '/'; write name, namespace/name or namespace/name@interface`,
      // Element 1 is broken but its interface (net1) is still known; element 5 takes net3 explicitly.
      'selection.duplicate-interface: element 2 ("tenant-b/sriov@net1") gets interface "net1", the same as element 1 ("Bad"); request a different interface for one of them',
      'selection.duplicate-interface: element 6 ("c@net1") gets interface "net1", the same as element 1 ("Bad"); request a different interface for one of them',
    ]);
  });

  it("reports a name and an interface problem of the same element", () => {
    expect(problems("Tenant/A@eth0:1").map((p) => p.code)).toEqual([
      "selection.bad-namespace",
      "selection.bad-name",
      "selection.bad-interface",
    ]);
  });

  it("reports both '/' and '@' excess of one element", () => {
    expect(problems("a/b/c@x@y").map((p) => p.code)).toEqual(["selection.too-many-slashes", "selection.too-many-ats"]);
  });

  it("cuts a long element in messages but keeps it whole in the selection", () => {
    const long = `a${"-b".repeat(40)}`;
    const [problem] = problems(long);
    expect(problem?.message).toBe(`element 1 ("${long.slice(0, 59)}…") names network "${long.slice(0, 59)}…", which is 81 characters long; a DNS-1123 label has at most 63`);
  });
});

describe("parseNetworkSelections, JSON form", () => {
  it("accepts every spec key and resolves the namespace", () => {
    const annotation = JSON.stringify([
      {
        name: "sriov",
        namespace: "tenant-b",
        interface: "fast0",
        ips: ["198.18.0.10/24", "fd00::10"],
        mac: "02:00:5e:10:00:01",
        "default-route": ["198.18.0.1"],
        "infiniband-guid": "c2:11:22:33:44:55:66:77",
        "cni-args": { foo: "bar", n: 1 },
        portMappings: [
          { hostPort: 8080, containerPort: 80 },
          { hostPort: 5353, containerPort: 53, protocol: "udp", hostIP: "198.18.0.2" },
        ],
        bandwidth: { ingressRate: 1000, ingressBurst: 2000, egressRate: 0, egressBurst: 0 },
        "example.com/tier": "gold",
      },
      { name: "macvlan", "ipam-claim-reference": "claim-1" },
    ]);
    expect(parseNetworkSelections(annotation, POD_NS)).toEqual({
      ok: true,
      value: [
        {
          selection: {
            index: 0,
            written: '{"name":"sriov","namespace":"tenant-b","interface":"fast0",…}',
            form: "json",
            namespace: "tenant-b",
            name: "sriov",
            namespaceExplicit: true,
            interfaceRequest: "fast0",
            ips: ["198.18.0.10/24", "fd00::10"],
            mac: "02:00:5e:10:00:01",
            defaultRoute: ["198.18.0.1"],
            infinibandGuid: "c2:11:22:33:44:55:66:77",
            cniArgs: { foo: "bar", n: 1 },
            portMappings: [
              { hostPort: 8080, containerPort: 80 },
              { hostPort: 5353, containerPort: 53, protocol: "udp", hostIP: "198.18.0.2" },
            ],
            bandwidth: { ingressRate: 1000, ingressBurst: 2000, egressRate: 0, egressBurst: 0 },
            extra: { "example.com/tier": "gold" },
          },
          key: "tenant-b/sriov",
          interfaceName: "fast0",
        },
        {
          selection: {
            index: 1,
            written: '{"name":"macvlan",…}',
            form: "json",
            namespace: POD_NS,
            name: "macvlan",
            namespaceExplicit: false,
            ipamClaimReference: "claim-1",
          },
          key: `${POD_NS}/macvlan`,
          interfaceName: "net2",
        },
      ],
    });
  });

  it.each<[string, string[]]>([
    ["[]", []],
    ['  [ {"name":"a"} ]  ', ["team-a/a net1"]],
    ['[{"name":"a","interface":"foo"},{"name":"b"}]', ["team-a/a foo", "team-a/b net2"]],
    // null, "" and [] are absent, as in Go's encoding/json.
    ['[{"name":"a","namespace":null,"interface":"","ips":[],"mac":"","default-route":null}]', ["team-a/a net1"]],
    ['[{"name":"a","default-route":[]},{"name":"b","default-route":["fd00::1"]}]', ["team-a/a net1", "team-a/b net2"]],
    // JSON interface names only need to be valid Linux names.
    ['[{"name":"a","interface":"Net_1"}]', ["team-a/a Net_1"]],
    ['[{"name":"a","portMappings":[{"hostPort":1,"containerPort":65535,"protocol":"Sctp"}]}]', ["team-a/a net1"]],
  ])("given %s, attaches %j", (annotation, expected) => {
    expect(summary(annotation)).toEqual(expected);
  });

  const at = (suffix: string): string => `${P}${suffix}`;

  it.each<[string, string, string, string]>([
    ["[{", "selection.invalid-json", P, `is not valid JSON (${jsonMessage("[{")}); the JSON form is a list of objects, e.g. [{"name":"macvlan-conf"}]`],
    ['{"name":"a"}', "selection.not-a-list", P, 'is an object in JSON, not a list; the JSON form is a list of objects, e.g. [{"name":"macvlan-conf"}]'],
    ['"a"', "selection.not-a-list", P, 'is a string in JSON, not a list; the JSON form is a list of objects, e.g. [{"name":"macvlan-conf"}]'],
    ['["a"]', "selection.not-an-object", at("[0]"), 'element 1 ("a") is a string, not an object; each element of the JSON list is an object with at least "name"'],
    ["[null]", "selection.not-an-object", at("[0]"), 'element 1 (null) is null, not an object; each element of the JSON list is an object with at least "name"'],
    ["[[1]]", "selection.not-an-object", at("[0]"), 'element 1 ([1]) is a list, not an object; each element of the JSON list is an object with at least "name"'],
    ['[{"namespace":"x"}]', "selection.missing-name", at("[0]"), 'element 1 ({"namespace":"x"}) has no "name"; name the NetworkAttachmentDefinition to attach'],
    ['[{"name":null}]', "selection.missing-name", at("[0]"), 'element 1 ({"name":null}) has no "name"; name the NetworkAttachmentDefinition to attach'],
    ['[{"name":""}]', "selection.missing-name", at("[0]"), 'element 1 ({"name":""}) has an empty "name"; name the NetworkAttachmentDefinition to attach'],
    ['[{"name":5}]', "selection.wrong-type", at("[0].name"), 'element 1 ({"name":5}) has "name": 5, which is a number; it must be a string'],
    ['[{"name":"A"}]', "selection.bad-name", at("[0].name"), 'element 1 ({"name":"A"}) names network "A", which has upper-case letters; Kubernetes names are lower-case'],
    [
      '[{"name":"a","namespace":"b/c"}]',
      "selection.bad-namespace",
      at("[0].namespace"),
      `element 1 ({"name":"a","namespace":"b/c"}) has namespace "b/c", which is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)`,
    ],
    [
      '[{"name":"a","interface":"eth0/1"}]',
      "selection.bad-interface",
      at("[0].interface"),
      `element 1 ({"name":"a","interface":"eth0/1"}) requests interface "eth0/1", which contains '/'`,
    ],
    ['[{"name":"a","interface":7}]', "selection.wrong-type", at("[0].interface"), 'element 1 ({"name":"a","interface":7}) has "interface": 7, which is a number; it must be a string'],
    [
      '[{"name":"a","interfaceRequest":"x"}]',
      "selection.unknown-key",
      at("[0].interfaceRequest"),
      'element 1 ({"name":"a",…}) has unknown key "interfaceRequest"; it is the pre-v3.2 Multus spelling of "interface": use "interface"',
    ],
    ['[{"name":"a","MAC":"x"}]', "selection.unknown-key", at("[0].MAC"), 'element 1 ({"name":"a",…}) has unknown key "MAC"; did you mean "mac"? keys are case-sensitive'],
    [
      '[{"name":"a","ip":["10.0.0.1"]}]',
      "selection.unknown-key",
      at("[0].ip"),
      'element 1 ({"name":"a",…}) has unknown key "ip"; the keys are name, namespace, interface, ips, mac, default-route, infiniband-guid, cni-args, portMappings, bandwidth, ipam-claim-reference; a custom key must contain a \'.\'',
    ],
    ['[{"name":"a","ips":"10.0.0.1"}]', "selection.wrong-type", at("[0].ips"), 'element 1 ({"name":"a",…}) has "ips": "10.0.0.1", which is a string; it must be a list of strings'],
    ['[{"name":"a","ips":[1]}]', "selection.wrong-type", at("[0].ips[0]"), 'element 1 ({"name":"a",…}) has "ips"[0]: 1, which is a number; it must be a string'],
    ['[{"name":"a","ips":["10.0.0.1","10.0.0.300"]}]', "selection.bad-ip", at("[0].ips[1]"), 'element 1 ({"name":"a",…}) has "ips"[1]: "10.0.0.300", which is not an IP address or CIDR'],
    ['[{"name":"a","ips":["10.0.0.0/33"]}]', "selection.bad-ip", at("[0].ips[0]"), 'element 1 ({"name":"a",…}) has "ips"[0]: "10.0.0.0/33", which is not an IP address or CIDR'],
    [
      '[{"name":"a","default-route":["10.0.0.0/24"]}]',
      "selection.bad-ip",
      at("[0].default-route[0]"),
      'element 1 ({"name":"a",…}) has "default-route"[0]: "10.0.0.0/24", which is not an IP address',
    ],
    [
      '[{"name":"a","ips":["10.0.0.1"],"ipam-claim-reference":"c"}]',
      "selection.ips-with-claim",
      at("[0]"),
      'element 1 ({"name":"a",…}) has both "ips" and "ipam-claim-reference", which exclude each other (multi-net spec v1.3); keep one',
    ],
    [
      '[{"name":"a","default-route":["10.0.0.1"]},{"name":"b"},{"name":"c","default-route":["10.0.0.2"]}]',
      "selection.multiple-default-routes",
      at("[2].default-route"),
      'element 3 ({"name":"c",…}) has "default-route", and so has element 1 ({"name":"a",…}); only one element may carry it (multi-net spec v1.3)',
    ],
    [
      '[{"name":"a","mac":"02:00:5e:10:00"}]',
      "selection.bad-mac",
      at("[0].mac"),
      'element 1 ({"name":"a",…}) has "mac": "02:00:5e:10:00", which is not a MAC address; write 6 hex bytes separated by \':\' or \'-\', e.g. 02:00:5e:10:00:01',
    ],
    [
      '[{"name":"a","infiniband-guid":"02:00:5e:10:00:01"}]',
      "selection.bad-infiniband-guid",
      at("[0].infiniband-guid"),
      'element 1 ({"name":"a",…}) has "infiniband-guid": "02:00:5e:10:00:01", which is not an InfiniBand GUID; write 8 hex bytes separated by \':\', e.g. c2:11:22:33:44:55:66:77',
    ],
    ['[{"name":"a","cni-args":[1]}]', "selection.wrong-type", at("[0].cni-args"), 'element 1 ({"name":"a",…}) has "cni-args": [1], which is a list; it must be an object'],
    [
      '[{"name":"a","ipam-claim-reference":true}]',
      "selection.wrong-type",
      at("[0].ipam-claim-reference"),
      'element 1 ({"name":"a",…}) has "ipam-claim-reference": true, which is a boolean; it must be a string',
    ],
    ['[{"name":"a","portMappings":{}}]', "selection.wrong-type", at("[0].portMappings"), 'element 1 ({"name":"a",…}) has "portMappings": {}, which is an object; it must be a list of objects'],
    ['[{"name":"a","portMappings":[8080]}]', "selection.wrong-type", at("[0].portMappings[0]"), 'element 1 ({"name":"a",…}) has "portMappings"[0]: 8080, which is a number; it must be an object'],
    [
      '[{"name":"a","portMappings":[{"hostPort":0,"containerPort":80}]}]',
      "selection.bad-port",
      at("[0].portMappings[0].hostPort"),
      'element 1 ({"name":"a",…}) has "portMappings"[0].hostPort: 0, which is not a port; ports are whole numbers in 1-65535',
    ],
    [
      '[{"name":"a","portMappings":[{"hostPort":80,"containerPort":65536}]}]',
      "selection.bad-port",
      at("[0].portMappings[0].containerPort"),
      'element 1 ({"name":"a",…}) has "portMappings"[0].containerPort: 65536, which is not a port; ports are whole numbers in 1-65535',
    ],
    [
      '[{"name":"a","portMappings":[{"hostPort":80.5,"containerPort":80}]}]',
      "selection.bad-port",
      at("[0].portMappings[0].hostPort"),
      'element 1 ({"name":"a",…}) has "portMappings"[0].hostPort: 80.5, which is not a port; ports are whole numbers in 1-65535',
    ],
    [
      '[{"name":"a","portMappings":[{"containerPort":80}]}]',
      "selection.bad-port",
      at("[0].portMappings[0].hostPort"),
      'element 1 ({"name":"a",…}) has no "portMappings"[0].hostPort; give a port in 1-65535',
    ],
    [
      '[{"name":"a","portMappings":[{"hostPort":"80","containerPort":80}]}]',
      "selection.wrong-type",
      at("[0].portMappings[0].hostPort"),
      'element 1 ({"name":"a",…}) has "portMappings"[0].hostPort: "80", which is a string; it must be a number',
    ],
    [
      '[{"name":"a","portMappings":[{"hostPort":80,"containerPort":80,"protocol":"icmp"}]}]',
      "selection.bad-protocol",
      at("[0].portMappings[0].protocol"),
      'element 1 ({"name":"a",…}) has "portMappings"[0].protocol: "icmp", which is not TCP, UDP or SCTP (in any case)',
    ],
    [
      '[{"name":"a","portMappings":[{"hostPort":80,"containerPort":80,"hostIP":"localhost"}]}]',
      "selection.bad-ip",
      at("[0].portMappings[0].hostIP"),
      'element 1 ({"name":"a",…}) has "portMappings"[0].hostIP: "localhost", which is not an IP address',
    ],
    [
      '[{"name":"a","portMappings":[{"hostPort":80,"containerPort":80,"hostport":81}]}]',
      "selection.unknown-key",
      at("[0].portMappings[0].hostport"),
      'element 1 ({"name":"a",…}) has unknown key "hostport" in "portMappings"[0]; the keys are hostPort, containerPort, protocol, hostIP',
    ],
    ['[{"name":"a","bandwidth":5}]', "selection.wrong-type", at("[0].bandwidth"), 'element 1 ({"name":"a",…}) has "bandwidth": 5, which is a number; it must be an object'],
    [
      '[{"name":"a","bandwidth":{"ingressBurst":100}}]',
      "selection.burst-without-rate",
      at("[0].bandwidth.ingressBurst"),
      'element 1 ({"name":"a",…}) has "bandwidth".ingressBurst without ingressRate; the bandwidth plugin needs both',
    ],
    [
      '[{"name":"a","bandwidth":{"egressRate":100,"egressBurst":0}}]',
      "selection.rate-without-burst",
      at("[0].bandwidth.egressRate"),
      'element 1 ({"name":"a",…}) has "bandwidth".egressRate without egressBurst; the bandwidth plugin needs both',
    ],
    [
      '[{"name":"a","bandwidth":{"ingressRate":-1}}]',
      "selection.bad-bandwidth",
      at("[0].bandwidth.ingressRate"),
      'element 1 ({"name":"a",…}) has "bandwidth".ingressRate: -1, which is not a whole number of bit/s (0 or more)',
    ],
    [
      '[{"name":"a","bandwidth":{"egressRate":1000,"egressBurst":34359738360}}]',
      "selection.bad-bandwidth",
      at("[0].bandwidth.egressBurst"),
      'element 1 ({"name":"a",…}) has "bandwidth".egressBurst: 34359738360, which the bandwidth plugin refuses: a burst must be under 4 GB (34359738360 bits)',
    ],
    [
      '[{"name":"a","bandwidth":{"ingressRate":"1M","ingressBurst":1}}]',
      "selection.wrong-type",
      at("[0].bandwidth.ingressRate"),
      'element 1 ({"name":"a",…}) has "bandwidth".ingressRate: "1M", which is a string; it must be a number',
    ],
    [
      '[{"name":"a","bandwidth":{"ingressrate":1}}]',
      "selection.unknown-key",
      at("[0].bandwidth.ingressrate"),
      'element 1 ({"name":"a",…}) has unknown key "ingressrate" in "bandwidth"; the keys are ingressRate, ingressBurst, egressRate, egressBurst',
    ],
    [
      '[{"name":"a","interface":"x"},{"name":"b","interface":"x"}]',
      "selection.duplicate-interface",
      at("[1].interface"),
      'element 2 ({"name":"b","interface":"x"}) gets interface "x", the same as element 1 ({"name":"a","interface":"x"}); request a different interface for one of them',
    ],
    [
      '[{"name":"a","interface":"net2"},{"name":"b"}]',
      "selection.duplicate-interface",
      at("[1]"),
      'element 2 ({"name":"b"}) gets interface "net2" (automatic, from its position), the same as element 1 ({"name":"a","interface":"net2"}); request a different interface for one of them',
    ],
  ])("rejects %s with %s", (annotation, code, path, message) => {
    expect(problems(annotation)).toEqual([{ code, path, message }]);
  });

  it("reports every problem of every element", () => {
    const annotation = JSON.stringify([
      { name: "a", ips: ["x"], "ipam-claim-reference": "c", "default-route": ["10.0.0.1"] },
      7,
      { name: "b", mac: "zz", foo: 1, "default-route": ["10.0.0.2"], interface: "net1" },
    ]);
    expect(problems(annotation).map((p) => `${p.code} ${p.path.slice(P.length)}`)).toEqual([
      "selection.bad-ip [0].ips[0]",
      "selection.ips-with-claim [0]",
      "selection.not-an-object [1]",
      "selection.bad-mac [2].mac",
      "selection.unknown-key [2].foo",
      "selection.multiple-default-routes [2].default-route",
      "selection.duplicate-interface [2].interface",
    ]);
  });

  it("does not walk a huge element to describe it", () => {
    const annotation = `[{"name":"a","cni-args":{"k":"${"v".repeat(100_000)}"},"x":1}]`;
    const [problem] = problems(annotation);
    expect(problem).toEqual({
      code: "selection.unknown-key",
      path: `${P}[0].x`,
      message:
        'element 1 ({"name":"a",…}) has unknown key "x"; the keys are name, namespace, interface, ips, mac, default-route, infiniband-guid, cni-args, portMappings, bandwidth, ipam-claim-reference; a custom key must contain a \'.\'',
    });
  });

  it("cuts a long wrong value in messages", () => {
    const [problem] = problems(JSON.stringify([{ name: "a", ips: { list: "y".repeat(200) } }]));
    expect(problem?.message).toBe(`element 1 ({"name":"a",…}) has "ips": {"list":"${"y".repeat(50)}…, which is an object; it must be a list of strings`);
  });
});
