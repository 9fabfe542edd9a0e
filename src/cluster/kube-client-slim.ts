// What client-node's dist/config.js and dist/cache.js import from its generated code, from the
// small modules that define it, without the rest (kube-client-hooks.ts redirects those two imports
// here). Re-exported unchanged, except ObjectSerializer: ListWatch calls only
// serialize(selector, "string"), which for a string is the string itself.
export { createConfiguration } from "@kubernetes/client-node/dist/gen/configuration.js";
export { ServerConfiguration } from "@kubernetes/client-node/dist/gen/servers.js";

/** client-node's ObjectSerializer as ListWatch uses it: strings (selectors) pass unchanged. */
export const ObjectSerializer = {
  serialize(data: unknown, type: string): unknown {
    if (type.toLowerCase() !== "string") throw new Error(`nadguard's slim client-node serializer handles strings only, not ${type}`);
    return data;
  },
};
