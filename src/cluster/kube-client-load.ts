// Registers kube-client-hooks.ts once per process, before anything imports
// @kubernetes/client-node: the commands call it before they import src/cli/kube.ts in Kubernetes
// mode. It starts Node's module-hooks thread (about 11 MiB of RSS) and saves the ~80 MiB of
// client-node's generated clients and models that nadguard never uses.
import { register } from "node:module";

let registered = false;

export function slimKubeClient(): void {
  if (registered) return;
  registered = true;
  register("./kube-client-hooks.js", import.meta.url);
}
