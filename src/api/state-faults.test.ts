import { describe, expect, it } from "vitest";
import { type StateFault, emptySnapshot } from "./snapshot.js";
import { missingObjectNote } from "./state-faults.js";

const NAD = "NetworkAttachmentDefinition";
const withFaults = (...stateFaults: StateFault[]) => ({ ...emptySnapshot(), stateFaults });

const brokenNads: StateFault = {
  path: "tenants/a.yaml",
  kind: "invalid-yaml",
  reason: "not valid YAML at line 3, column 9",
  lastGoodInUse: true,
  holds: [{ kind: NAD, namespace: "tenant-a" }, { kind: "Namespace" }],
};

describe("missingObjectNote", () => {
  it.each([
    ["no fault", withFaults(), "tenant-a", ""],
    [
      "a file whose last good version held NADs of the namespace",
      withFaults(brokenNads),
      "tenant-a",
      " (state file tenants/a.yaml could not be read: not valid YAML at line 3, column 9; its last good version is in use)",
    ],
    ["a file whose last good version held only other namespaces' NADs", withFaults(brokenNads), "tenant-b", ""],
    [
      "a file never read",
      withFaults({ path: "b.yaml", kind: "unreadable", reason: "permission denied", lastGoodInUse: false }),
      "tenant-b",
      " (state file b.yaml could not be read: permission denied, so this NetworkAttachmentDefinition may exist)",
    ],
    [
      "the directory gone, its last good state in use",
      withFaults({ path: "", kind: "directory", reason: "cannot be read: it does not exist", lastGoodInUse: true }),
      "tenant-b",
      " (the state directory cannot be read: it does not exist; its last good state is in use)",
    ],
    [
      "a subdirectory that cannot be read",
      withFaults({ path: "tenants/", kind: "directory", reason: "cannot be read: permission denied", lastGoodInUse: true }),
      "tenant-b",
      " (state directory tenants/ cannot be read: permission denied; its last good state is in use)",
    ],
  ])("given %s", (_, snapshot, namespace, note) => {
    expect(missingObjectNote(snapshot, NAD, namespace)).toBe(note);
  });

  it("names three faults and counts the rest, however many files fail", () => {
    const faults = Array.from({ length: 1000 }, (_, i): StateFault => ({ path: `f${i}.yaml`, kind: "unreadable", reason: "permission denied", lastGoodInUse: false }));
    expect(missingObjectNote(withFaults(...faults), NAD, "t")).toBe(
      " (state file f0.yaml could not be read: permission denied, so this NetworkAttachmentDefinition may exist;" +
        " state file f1.yaml could not be read: permission denied, so this NetworkAttachmentDefinition may exist;" +
        " state file f2.yaml could not be read: permission denied, so this NetworkAttachmentDefinition may exist;" +
        " and 997 more unreadable state files)",
    );
  });
});
