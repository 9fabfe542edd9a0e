// The caBundle of nadguard's webhook configurations: set in the text of webhook configuration
// manifests (the command writes the result to stdout or a file of its choosing, never back to the
// file it read), or as `kubectl patch` commands for configurations already in a cluster. Only the
// caBundle values of webhooks whose clientConfig.service is the given Service change; every other
// byte of the text (comments, order, quoting) stays as it was.
import { readFile } from "node:fs/promises";
import { isMap, isScalar, isSeq, parseAllDocuments } from "yaml";
import { InputError } from "../src/api/errors.js";
import type { SecretRef } from "./secret.js";

export interface WebhookRef {
  /** `mutatingwebhookconfiguration` or `validatingwebhookconfiguration`, as kubectl names it. */
  resource: string;
  configuration: string;
  webhook: string;
}

export interface PatchedText {
  /** The manifest text with the caBundle values set. */
  text: string;
  webhooks: WebhookRef[];
}

const KINDS: Record<string, string> = {
  MutatingWebhookConfiguration: "mutatingwebhookconfiguration",
  ValidatingWebhookConfiguration: "validatingwebhookconfiguration",
};

/**
 * Sets `clientConfig.caBundle` (base64 of the PEM bundle) of every webhook in `text` (read from
 * `file`, which names it in messages) that calls `service`. InputError when the text is not YAML,
 * calls the service from no webhook, or such a webhook has no caBundle field to rewrite.
 */
export function patchWebhookText(text: string, file: string, caBundleBase64: string, service: SecretRef): PatchedText {
  const { edits, webhooks } = findCaBundles(text, file, service);
  let patched = text;
  // From the end, so that the earlier offsets stay valid.
  for (const [start, end] of edits.sort((a, b) => b[0] - a[0])) {
    patched = `${patched.slice(0, start)}${caBundleBase64}${patched.slice(end)}`;
  }
  return { text: patched, webhooks };
}

/** The webhooks of a manifest file that call `service` (for the kubectl commands), without writing. */
export async function webhooksInFile(file: string, service: SecretRef): Promise<WebhookRef[]> {
  return findCaBundles(await readFile(file, "utf8"), file, service).webhooks;
}

function findCaBundles(text: string, file: string, service: SecretRef): { edits: Array<[number, number]>; webhooks: WebhookRef[] } {
  const problem = (path: string, message: string): InputError => new InputError([{ code: "certs.webhooks", path: `${file}: ${path}`, message }]);
  const edits: Array<[number, number]> = [];
  const webhooks: WebhookRef[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length > 0) throw problem(`document ${index + 1}`, `is not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
    const resource = KINDS[String(doc.get("kind"))];
    const list = doc.get("webhooks", true);
    if (resource === undefined || !isSeq(list)) return;
    const configuration = String(doc.getIn(["metadata", "name"]));
    list.items.forEach((item, position) => {
      if (!isMap(item)) return;
      const target = item.getIn(["clientConfig", "service"]);
      if (!isMap(target) || target.get("name") !== service.name || target.get("namespace") !== service.namespace) return;
      const name = String(item.get("name"));
      const value = item.getIn(["clientConfig", "caBundle"], true);
      if (!isScalar(value) || !value.range) {
        throw problem(`${configuration} webhooks[${position}] (${name})`, 'has no clientConfig.caBundle to rewrite; add `caBundle: ""`');
      }
      edits.push([value.range[0], value.range[1]]);
      webhooks.push({ resource, configuration, webhook: name });
    });
  });
  if (webhooks.length === 0) throw problem("(top level)", `no webhook calls service ${service.namespace}/${service.name}`);
  return { edits, webhooks };
}

/** One `kubectl patch` per configuration: a strategic merge on `webhooks` by name (its merge key). */
export function kubectlPatchCommands(webhooks: readonly WebhookRef[], caBundleBase64: string): string[] {
  const byConfiguration = new Map<string, WebhookRef[]>();
  for (const ref of webhooks) {
    const key = `${ref.resource} ${ref.configuration}`;
    byConfiguration.set(key, [...(byConfiguration.get(key) ?? []), ref]);
  }
  return [...byConfiguration].map(([target, refs]) => {
    const patch = { webhooks: refs.map((ref) => ({ name: ref.webhook, clientConfig: { caBundle: caBundleBase64 } })) };
    return `kubectl patch ${target} --type=strategic -p '${JSON.stringify(patch)}'`;
  });
}
