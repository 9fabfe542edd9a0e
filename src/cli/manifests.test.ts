// The manifest reader against kubectl's reading: merge keys in order, the last of duplicated keys,
// YAML 1.1 scalars, lists and document streams; and, where kubectl is installed, the very objects
// `kubectl label --local -f` decodes from the same text.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../api/errors.js";
import { MAX_VALUES, parseManifests } from "./manifests.js";

const objects = (text: string): unknown[] => parseManifests(text, "m.yaml").items.map((item) => item.object);
const only = (text: string): Record<string, unknown> => objects(text)[0] as Record<string, unknown>;
const problems = (text: string): string[] => {
  try {
    parseManifests(text, "m.yaml");
  } catch (error) {
    if (error instanceof InputError) return error.message.split("\n");
    throw error;
  }
  throw new Error("no problem reported");
};

const HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";

describe("merge keys, as goyaml.v2 applies them (in order)", () => {
  it("a merge after a key replaces it, with a warning naming both lines", () => {
    const manifests = parseManifests(`${HEAD}labels: &l {app: web}\ndata:\n  app: db\n  <<: *l\n`, "m.yaml");
    expect((manifests.items[0]!.object as { data: unknown }).data).toEqual({ app: "web" });
    expect(manifests.warnings).toEqual([`m.yaml:7: the merge key << replaces "app" set at line 6; kubectl keeps the merged value`]);
  });

  it("a key after a merge replaces the merged value, silently (the usual way to override)", () => {
    const manifests = parseManifests(`${HEAD}labels: &l {app: web, tier: front}\ndata:\n  <<: *l\n  app: db\n`, "m.yaml");
    expect((manifests.items[0]!.object as { data: unknown }).data).toEqual({ app: "db", tier: "front" });
    expect(manifests.warnings).toEqual([]);
  });

  it("in a list of merges the earlier one wins, and all of them replace keys set before", () => {
    const text = `${HEAD}a: &a {x: "1", w: "1"}\nb: &b {x: "2", z: "2"}\ndata:\n  x: "0"\n  <<: [*a, *b]\n  v: "3"\n`;
    expect(only(text).data).toEqual({ x: "1", w: "1", z: "2", v: "3" });
  });

  it("merges inside merged mappings, an inline mapping, and the !!merge tag", () => {
    expect(only(`${HEAD}a: &a {x: "1"}\ndata:\n  <<: {<<: *a, z: "2"}\n`).data).toEqual({ x: "1", z: "2" });
    expect(only(`${HEAD}data:\n  !!merge <<: {x: "1"}\n`).data).toEqual({ x: "1" });
  });

  it("a quoted '<<' is an ordinary key", () => {
    expect(only(`${HEAD}data:\n  "<<": {x: "1"}\n`).data).toEqual({ "<<": { x: "1" } });
  });

  it.each([
    ["a merge of a string", `${HEAD}data:\n  <<: "x"\n`, "m.yaml:5 (document 1): the merge key << needs a mapping or a list of mappings"],
    ["a merge of an anchor the document does not have", `${HEAD}data:\n  <<: *nowhere\n`, `m.yaml:5 (document 1): unknown anchor "nowhere"`],
  ])("refuses %s, naming the line", (_label, text, message) => {
    expect(problems(text)).toContain(message);
  });
});

describe("duplicate keys", () => {
  it("take the last value, with a warning naming the key and both lines", () => {
    const manifests = parseManifests(`${HEAD}data:\n  mode: a\n  other: b\n  mode: c\n`, "m.yaml");
    expect((manifests.items[0]!.object as { data: unknown }).data).toEqual({ mode: "c", other: "b" });
    expect(manifests.warnings).toEqual([`m.yaml:7: duplicate key "mode" (also at line 5); the last value wins, as in kubectl`]);
  });

  it("replace a whole mapping, not merge into it", () => {
    const manifests = parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: one}\nmetadata: {name: b}\n", "m.yaml");
    expect(manifests.items[0]!.object.metadata).toEqual({ name: "b" });
    expect(manifests.warnings).toEqual([`m.yaml:4: duplicate key "metadata" (also at line 3); the last value wins, as in kubectl`]);
  });

  it("count as duplicates when YAML 1.1 reads two spellings as one key (y and true)", () => {
    const manifests = parseManifests(`${HEAD}data:\n  y: a\n  true: b\n`, "m.yaml");
    expect((manifests.items[0]!.object as { data: unknown }).data).toEqual({ true: "b" });
    expect(manifests.warnings).toHaveLength(1);
  });
});

describe("scalars, as YAML 1.1 (goyaml.v2) reads them", () => {
  it.each([
    ["yes", true],
    ["On", true],
    ["n", false],
    ["OFF", false],
    ["tRUE", "tRUE"],
    ['"yes"', "yes"],
    ["0777", 511],
    ["1_000", 1000],
    ["0x1F", 31],
    ["1e3", 1000],
    ["~", null],
    ["1:20", "1:20"],
    ["2001-12-14", "2001-12-14"],
    ["!!binary aGVsbG8=", "hello"],
    ["!!str 12", "12"],
  ])("%s → %j", (text, value) => {
    expect(only(`${HEAD}data:\n  v: ${text}\n`).data).toEqual({ v: value });
  });

  it("refuses what JSON cannot carry (kubectl: json: unsupported value)", () => {
    expect(problems(`${HEAD}data:\n  v: .inf\n`)).toEqual(["m.yaml:5 (document 1): Infinity cannot be sent to the API server (JSON has no infinity or NaN)"]);
  });

  it("keeps a __proto__ key as a key", () => {
    const data = only(`${HEAD}data:\n  __proto__: {polluted: "yes"}\n`).data as Record<string, unknown>;
    expect(Object.keys(data)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("lists and streams", () => {
  const pod = (name: string, indent = ""): string => `${indent}- apiVersion: v1\n${indent}  kind: Pod\n${indent}  metadata: {name: ${name}}\n`;

  it("expands a kind: List into its items, with each item's line", () => {
    const manifests = parseManifests(`apiVersion: v1\nkind: List\nitems:\n${pod("a")}${pod("b")}`, "m.yaml");
    expect(manifests.items.map((i) => [i.object.metadata, i.document, i.item, i.line])).toEqual([
      [{ name: "a" }, 1, 0, 4],
      [{ name: "b" }, 1, 1, 7],
    ]);
    expect(manifests.several).toBe(true);
  });

  it("treats any object with items as a list, whatever its kind (apimachinery's decoder looks for items)", () => {
    expect(objects(`apiVersion: v1\nkind: PodList\nitems:\n${pod("a")}`)).toEqual([{ apiVersion: "v1", kind: "Pod", metadata: { name: "a" } }]);
    expect(objects(`apiVersion: v1\nkind: Pod\nmetadata: {name: outer}\nitems:\n${pod("inner")}`)).toEqual([{ apiVersion: "v1", kind: "Pod", metadata: { name: "inner" } }]);
  });

  it("reads every document, skipping empty and null ones, and numbers documents as they stand in the file", () => {
    const manifests = parseManifests(`---\n# nothing\n---\n~\n---\n${HEAD}---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n`, "m.yaml");
    expect(manifests.items.map((i) => [i.object.kind, i.document, i.line])).toEqual([
      ["ConfigMap", 3, 6],
      ["Pod", 4, 10],
    ]);
    expect(manifests.documents).toBe(2);
    expect(manifests.several).toBe(true);
  });

  it("one object is not several", () => {
    expect(parseManifests(HEAD, "m.yaml").several).toBe(false);
  });

  it("reads a JSON stream, one object after another, with duplicate keys warned about", () => {
    const manifests = parseManifests('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}\n{"apiVersion":"v1","kind":"Pod",\n "metadata":{"name":"b","name":"c"}}\n', "m.json");
    expect(manifests.items.map((i) => [i.object.metadata, i.document, i.line])).toEqual([
      [{ name: "a" }, 1, 1],
      [{ name: "c" }, 2, 2],
    ]);
    expect(manifests.warnings).toEqual([`m.json:3: duplicate key "name" (also at line 3); the last value wins, as in kubectl`]);
  });

  it.each([
    ["no object at all", "# only a comment\n", ["m.yaml: holds no object (expected Kubernetes manifests or an AdmissionReview)"]],
    ["a list whose items are null", "apiVersion: v1\nkind: List\nitems:\n", ["m.yaml: holds no object (expected Kubernetes manifests or an AdmissionReview)"]],
    ["a list inside a list", `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: []\n`, ["m.yaml:4 (document 1, items[0]): is a list inside a list; kubectl does not read nested lists"]],
    ["items that are not objects", "apiVersion: v1\nkind: List\nitems: [5]\n", ["m.yaml:3 (document 1, items[0]): is the number 5, not an object"]],
    ["items not a list", "apiVersion: v1\nkind: List\nitems: 5\n", ["m.yaml:1 (document 1): items is the number 5; a list's items must be an array of objects"]],
    ["a document that is a list", "- a\n", ["m.yaml:1 (document 1): is a list, not an object (expected a Kubernetes manifest or an AdmissionReview)"]],
    [
      "objects without kind or apiVersion, every one named",
      `kind: Pod\nmetadata: {name: a}\n---\n${HEAD}---\napiVersion: v1\nmetadata: {name: c}\n`,
      ["m.yaml:1 (document 1): apiVersion missing; kubectl refuses an object without them", "m.yaml:8 (document 3): kind missing; kubectl refuses an object without them"],
    ],
    ["invalid YAML", `${HEAD}data:\n  x: [1,\n`, ["m.yaml:6 (document 1): is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]"]],
    ["an anchor that contains itself", `${HEAD}data: &d\n  self: *d\n`, [`m.yaml:5 (document 1): anchor "d" refers to a value that contains it`]],
    ["JSON with text between objects", '{"kind":"Pod"} x {"kind":"Pod"}', ['m.json:1: is not valid JSON: unexpected "x" between objects']],
  ])("refuses %s, naming each place", (_label, text, expected) => {
    const file = text.startsWith("{") ? "m.json" : "m.yaml";
    try {
      parseManifests(text, file);
      expect.unreachable();
    } catch (error) {
      expect((error as InputError).message.split("\n")).toEqual(expected);
    }
  });

  it("stops an alias bomb at a bound instead of expanding it", () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 8; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(", ")}]`);
    expect(problems(`${HEAD}${levels.join("\n")}\n`)[0]).toMatch(new RegExp(`expands to more than ${MAX_VALUES.toLocaleString("en-US")} values`));
  });
});

/** kubectl's own decoding, when kubectl is installed: `label --local` decodes and prints without a cluster. */
function kubectlObjects(text: string): unknown[] | undefined {
  let output: string;
  try {
    output = execFileSync("kubectl", ["label", "--local", "-f", "-", "-o", "json", "nadguard.io/probe=x"], {
      input: text,
      encoding: "utf8",
      env: { ...process.env, KUBECONFIG: "/dev/null" },
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  // One indented JSON object per input object, one after another.
  const chunks = output.trim().split(/\n}\n(?={)/);
  const list = chunks.map((chunk, i) => JSON.parse(i < chunks.length - 1 ? `${chunk}\n}` : chunk) as unknown);
  return list.map((object) => {
    const labels = (object as { metadata: { labels: Record<string, string> } }).metadata.labels;
    delete labels["nadguard.io/probe"];
    if (Object.keys(labels).length === 0) delete (object as { metadata: { labels?: unknown } }).metadata.labels;
    return object;
  });
}

const FIXTURES = join(import.meta.dirname, "../../test/fixtures/manifests");
const KUBECTL_CASES: Array<[string, string]> = [
  ...readdirSync(FIXTURES).map((name): [string, string] => [`test/fixtures/manifests/${name}`, readFileSync(join(FIXTURES, name), "utf8")]),
  ["merges in order and YAML 1.1 keys", `${HEAD}a: &a {x: "1", y: "1"}\nb: &b {x: "2", z: "2"}\ndata:\n  x: "0"\n  <<: [*a, *b]\n  w: "3"\n`],
  ["duplicate keys at two levels", `${HEAD}data: {a: "1"}\ndata:\n  b: "2"\n  b: "3"\n`],
  ["a JSON stream", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"1","k":"2"}}\n{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}\n'],
];

const HAS_KUBECTL = kubectlObjects(HEAD) !== undefined;
if (!HAS_KUBECTL) console.warn("src/cli/manifests.test.ts: kubectl is not installed; the comparison with kubectl's decoding is skipped");

describe.skipIf(!HAS_KUBECTL)("agrees with kubectl's own decoding (kubectl label --local -f)", () => {
  it.each(KUBECTL_CASES)("%s", (_label, text) => {
    expect(parseManifests(text, "m.yaml").items.map((item) => item.object)).toEqual(kubectlObjects(text));
  });
});
