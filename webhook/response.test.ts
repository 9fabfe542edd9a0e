import { describe, expect, it } from "vitest";
import { MAX_WARNING_LENGTH, finalizeResponse, serializeReview, truncate } from "./response.js";

const patch = Buffer.from(JSON.stringify([{ op: "add", path: "/metadata/labels", value: { a: "b" } }])).toString("base64");

describe("finalizeResponse", () => {
  it("echoes the request's uid whatever the handler said", () => {
    const result = finalizeResponse("req-uid", "validate", { uid: "other", allowed: true });
    expect(result).toEqual({ ok: true, response: { uid: "req-uid", allowed: true }, notes: ['replaced uid "other" by the request\'s'] });
  });

  it("keeps a patch that comes with patchType on an allowed mutation", () => {
    const result = finalizeResponse("u", "mutate", { uid: "u", allowed: true, patch, patchType: "JSONPatch" });
    expect(result).toMatchObject({ ok: true, response: { patch, patchType: "JSONPatch" }, notes: [] });
  });

  it.each([
    ["patchType without patch", "mutate", { allowed: true, patchType: "JSONPatch" }, "dropped patchType without a patch"],
    ["a patch on a denial", "mutate", { allowed: false, patch, patchType: "JSONPatch" }, "dropped the patch of a denial"],
    ["a patch from the validate handler", "validate", { allowed: true, patch, patchType: "JSONPatch" }, "dropped a patch returned by the validate handler"],
  ] as const)("drops %s", (_what, endpoint, value, note) => {
    const result = finalizeResponse("u", endpoint, { uid: "u", ...value });
    expect(result.ok && result.response).not.toHaveProperty("patch");
    expect(result.ok && result.response).not.toHaveProperty("patchType");
    expect(result.ok && result.notes).toEqual([note]);
  });

  it.each([
    ["a patch without patchType", { allowed: true, patch }, /patchType undefined/],
    ["a patch that is not base64 JSON Patch", { allowed: true, patch: "not base64!", patchType: "JSONPatch" }, /not base64/],
    ["a response without allowed", { status: { code: 403, message: "x" } }, /boolean "allowed"/],
  ])("refuses %s, so the review is denied", (_what, value, error) => {
    const result = finalizeResponse("u", "mutate", { uid: "u", ...value });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(error);
  });

  it("refuses something that is not a response at all", () => {
    expect(finalizeResponse("u", "mutate", undefined)).toEqual({ ok: false, error: "the mutate handler returned undefined, not a response" });
  });

  it("cuts every warning under 120 characters", () => {
    const long = "w".repeat(300);
    const result = finalizeResponse("u", "validate", { uid: "u", allowed: true, warnings: ["short", long] });
    if (!result.ok) throw new Error(result.error);
    expect(result.response.warnings?.[0]).toBe("short");
    expect(result.response.warnings?.[1]).toHaveLength(MAX_WARNING_LENGTH);
    expect(result.response.warnings?.[1]?.endsWith("…")).toBe(true);
    expect(result.notes).toEqual([`cut 1 warning(s) to ${MAX_WARNING_LENGTH} characters`]);
  });

  it("keeps a denial's status under the wire key `status`", () => {
    const result = finalizeResponse("u", "validate", { uid: "u", allowed: false, status: { code: 403, reason: "Forbidden", message: "no" } });
    expect(result).toMatchObject({ ok: true, response: { allowed: false, status: { code: 403, reason: "Forbidden", message: "no" } } });
  });
});

describe("truncate", () => {
  it("never splits a surrogate pair", () => {
    expect(truncate("😀😀😀", 2)).toBe("😀…");
  });
});

describe("serializeReview", () => {
  it.each([
    ["an allowed review", { uid: "u-1", allowed: true }],
    ["a patched one with warnings", { uid: "u-2", allowed: true, patch, patchType: "JSONPatch" as const, warnings: ['a "quoted" warning'], auditAnnotations: { "nadguard.io/reason": "x" } }],
    ["a denial with text to escape", { uid: "u-3", allowed: false, status: { code: 403, reason: "Forbidden", message: "line\nbreak \u2028 and \"quotes\"" } }],
  ])("writes %s as the JSON of its AdmissionReview envelope", (_name, response) => {
    const text = serializeReview(response);
    expect(text).toBe(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response }));
    expect(JSON.parse(text)).toEqual({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response });
  });
});
