// A pod review over 64 KiB takes the webhook's large-body path (webhook/body-reader.ts: read within
// the budget of bytes in flight into a reused slab, limit-checked in the worker thread, then built):
// `nadguard webhook`, as a process, must answer it exactly as the same review without the bulk (env,
// args, fields a real pod carries), on /mutate and /validate, for each example review: same verdict,
// message, warnings and patch.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLES, type WebhookProcess, startWebhook } from "./support/webhook-process.js";

const REVIEWS = join(EXAMPLES, "reviews");
const FILES = ["pod-tenant-a-allowed.json", "pod-tenant-b-denied.json", "pod-update-add-network-denied.json", "pod-update-change-network-denied.json", "pod-update-default-network-denied.json", "pod-update-labels-allowed.json"];

type Obj = Record<string, unknown>;

/** The review with ~200 KiB of env in each container of object and oldObject, and some fields no schema names. */
function padded(review: Obj): Obj {
  const copy = structuredClone(review) as { request: Obj };
  for (const key of ["object", "oldObject"]) {
    const pod = copy.request[key] as { spec?: { containers?: Obj[] }; metadata?: Obj } | undefined;
    if (!pod?.spec?.containers) continue;
    for (const container of pod.spec.containers) {
      container.env = Array.from({ length: 200 }, (_, i) => ({ name: `BULK_${i}`, value: "v".repeat(1000) }));
      container.args = ["--flag"];
    }
    (pod.spec as Obj).tolerations = [{ operator: "Exists" }];
  }
  return copy;
}

let webhook: WebhookProcess;
beforeAll(async () => {
  webhook = await startWebhook(join(EXAMPLES, "cluster"));
}, 60_000);
afterAll(async () => webhook?.stop());

describe("nadguard webhook: a pod review over 64 KiB", () => {
  it.each(FILES)("is answered as the same review without its bulk: %s", async (file) => {
    const review = JSON.parse(await readFile(join(REVIEWS, file), "utf8")) as Obj;
    const large = JSON.stringify(padded(review));
    expect(large.length).toBeGreaterThan(64 * 1024);
    for (const path of ["/mutate", "/validate"]) {
      const small = await webhook.post(path, JSON.stringify(review));
      const big = await webhook.post(path, large);
      expect(small.status).toBe(200);
      expect({ status: big.status, answer: JSON.parse(big.text) }).toEqual({ status: 200, answer: JSON.parse(small.text) });
    }
  });
});
