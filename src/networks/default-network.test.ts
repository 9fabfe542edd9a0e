import { describe, expect, it } from "vitest";
import { DEFAULT_NETWORK_ANNOTATION_PATH, parseDefaultNetwork } from "./default-network.js";

const P = DEFAULT_NETWORK_ANNOTATION_PATH;

describe("parseDefaultNetwork", () => {
  it.each<[string, string, boolean, string | undefined]>([
    ["calico", "kube-system/calico", false, undefined],
    [" net-ns/calico ", "net-ns/calico", true, undefined],
    ["net-ns/calico@eth0", "net-ns/calico", true, "eth0"],
    ['[{"name":"calico"}]', "kube-system/calico", false, undefined],
    ['[{"name":"calico","namespace":"net-ns","ips":["198.18.0.5/15"]}]', "net-ns/calico", true, undefined],
  ])("given %j, selects %s", (annotation, key, explicit, interfaceRequest) => {
    const result = parseDefaultNetwork(annotation, "kube-system");
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    expect(`${result.value.namespace}/${result.value.name}`).toBe(key);
    expect(result.value.namespaceExplicit).toBe(explicit);
    expect(result.value.interfaceRequest).toBe(interfaceRequest);
  });

  it("resolves a bare name to the namespace it is given", () => {
    const result = parseDefaultNetwork("calico", "pods-here");
    expect(result).toEqual({
      ok: true,
      value: { index: 0, written: "calico", form: "comma", namespace: "pods-here", name: "calico", namespaceExplicit: false },
    });
  });

  const NONE = "names no network; name exactly one NetworkAttachmentDefinition (name or namespace/name), or remove the annotation";
  const TWO = "names 2 networks; Multus takes exactly one default network, which replaces the cluster network";

  it.each<[string, Array<[string, string, string]>]>([
    ["", [["selection.empty-element", P, NONE]]],
    ["[]", [["selection.empty-element", P, NONE]]],
    ["a,b", [["selection.multiple-default-networks", P, TWO]]],
    ['[{"name":"a"},{"name":"b"}]', [["selection.multiple-default-networks", P, TWO]]],
    [
      " , ",
      [
        [
          "selection.empty-element",
          P,
          "names no network, only commas and whitespace; list networks as name, namespace/name or namespace/name@interface, or remove the annotation",
        ],
      ],
    ],
    [
      "a,",
      [
        ["selection.empty-element", P, 'element 2 ("") is empty; remove the trailing comma'],
        ["selection.multiple-default-networks", P, TWO],
      ],
    ],
    [
      "Calico",
      [["selection.bad-name", P, 'element 1 ("Calico") names network "Calico", which has upper-case letters; Kubernetes names are lower-case']],
    ],
    ["a/b/c", [["selection.too-many-slashes", P, "element 1 (\"a/b/c\") has more than one '/'; write name, namespace/name or namespace/name@interface"]]],
    [
      '[{"name":"a","mac":"x"}]',
      [
        [
          "selection.bad-mac",
          `${P}[0].mac`,
          "element 1 ({\"name\":\"a\",…}) has \"mac\": \"x\", which is not a MAC address; write 6 hex bytes separated by ':' or '-', e.g. 02:00:5e:10:00:01",
        ],
      ],
    ],
    ['{"name":"a"}', [["selection.not-a-list", P, 'is an object in JSON, not a list; the JSON form is a list of objects, e.g. [{"name":"macvlan-conf"}]']]],
  ])("rejects %j", (annotation, expected) => {
    const result = parseDefaultNetwork(annotation, "kube-system");
    expect(result).toEqual({ ok: false, error: expected.map(([code, path, message]) => ({ code, path, message })) });
  });
});
