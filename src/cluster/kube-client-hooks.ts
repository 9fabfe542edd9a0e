// Module resolve hook (run by Node's loader thread, registered by kube-client-load.ts) that keeps
// @kubernetes/client-node 2.x from loading its generated code: two of its own imports point
// at kube-client-slim.ts instead.
//   dist/config.js imports ./gen/index.js for createConfiguration and ServerConfiguration, which
//     makeApiClient alone uses; gen/index.js loads every generated API client and all ~2,700
//     model classes (about 80 MiB of RSS).
//   dist/cache.js (ListWatch) imports ./serializer.js to pass label and field selectors through
//     ObjectSerializer.serialize(value, "string"), which returns the string; serializer.js loads
//     every model class.
// Nothing else is redirected. If a client-node release imports more names from these modules,
// linking fails at start with "does not provide an export named …" (test/startup-imports.test.ts
// starts `webhook --kubeconfig` from the build and would fail).

const CLIENT = "/@kubernetes/client-node/dist/";

/** "importing file (below dist/) + specifier" → the stand-in module. */
const REDIRECTS = new Set(["config.js ./gen/index.js", "cache.js ./serializer.js"]);

interface ResolveContext {
  readonly parentURL?: string | undefined;
}
type NextResolve = (specifier: string, context?: ResolveContext) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<{ url: string; shortCircuit?: boolean }> {
  const parent = context.parentURL;
  const at = parent ? parent.lastIndexOf(CLIENT) : -1;
  if (parent && at >= 0 && REDIRECTS.has(`${parent.slice(at + CLIENT.length)} ${specifier}`)) {
    // Resolved through the chain (not built here) so that a .js → .ts mapping of tsx applies too.
    return { ...(await next("./kube-client-slim.js", { ...context, parentURL: import.meta.url })), shortCircuit: true };
  }
  return next(specifier, context);
}
