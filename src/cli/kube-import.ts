// The Kubernetes-mode module of the commands (kube.ts), imported only when a command runs with
// --kubeconfig / --in-cluster, after the hook that loads only the parts of client-node nadguard
// uses (src/cluster/kube-client-load.ts).
import { slimKubeClient } from "../cluster/kube-client-load.js";

export async function importKube(): Promise<typeof import("./kube.js")> {
  slimKubeClient();
  return import("./kube.js");
}
