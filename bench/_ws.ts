import { admissionObjects } from "./synthetic.js";
import { stringify } from "yaml";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
const dir = process.argv[2]!; const files = new Map<string, unknown[]>();
for (const o of admissionObjects({ namespaces: 1000, nadsPerNamespace: 10 })) { const m = o.metadata as { name: string; namespace?: string }; const f = o.kind === "Namespace" ? m.name : (m.namespace ?? "cluster"); files.set(f, [...(files.get(f) ?? []), o]); }
await mkdir(dir, { recursive: true }); for (const [n, os] of files) await writeFile(join(dir, `${n}.yaml`), os.map((o) => stringify(o)).join("---\n"));
