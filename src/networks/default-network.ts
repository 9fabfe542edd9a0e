// The Multus annotation `v1.multus-cni.io/default-network`: replaces the cluster network (eth0)
// of one pod with a NetworkAttachmentDefinition. Same element syntax and rules as the networks
// annotation (comma or JSON form), but exactly one element.
//
// Which namespace an unqualified name resolves to is the caller's choice: Multus itself resolves
// it to its own namespace (`multusNamespace`, kube-system by default; pkg/k8sclient
// tryLoadK8sPodDefaultNetwork), not to the pod's, while some other readers of this annotation
// (ovn-kubernetes) use the pod's namespace.
import { ok } from "../api/errors.js";
import { ANNOTATION_DEFAULT_NETWORK } from "../api/objects.js";
import { type NetworkSelection, type SelectionResult, parseSelectionElements, selectionFailure } from "./selection.js";

export const DEFAULT_NETWORK_ANNOTATION_PATH = `metadata.annotations["${ANNOTATION_DEFAULT_NETWORK}"]`;

/**
 * Parses the default-network annotation into its one selection; a name without namespace gets
 * `namespace`. Multus ignores an interface request here (the default network is always the
 * runtime's interface, usually eth0); it is kept in the selection but not checked against
 * anything. Fails, with every problem found, on an empty value, an empty list, or more than one
 * element. Never throws.
 */
export function parseDefaultNetwork(annotation: string, namespace: string): SelectionResult<NetworkSelection> {
  const parsed = parseSelectionElements(annotation, namespace, DEFAULT_NETWORK_ANNOTATION_PATH);
  const problems = parsed.problems;
  if (parsed.elements === 0 && problems.length === 0) {
    problems.push({
      code: "selection.empty-element",
      path: DEFAULT_NETWORK_ANNOTATION_PATH,
      message: "names no network; name exactly one NetworkAttachmentDefinition (name or namespace/name), or remove the annotation",
    });
  }
  if (parsed.elements > 1) {
    problems.push({
      code: "selection.multiple-default-networks",
      path: DEFAULT_NETWORK_ANNOTATION_PATH,
      message: `names ${parsed.elements} networks; Multus takes exactly one default network, which replaces the cluster network`,
    });
  }
  const selection = parsed.selections[0];
  return problems.length > 0 || selection === undefined ? selectionFailure(problems, parsed.omittedProblems) : ok(selection);
}
