// The part of kube-apiserver's custom-resource handling that decides whether an object fits a
// CRD's structural openAPIV3Schema, for the schema features nadguard's CRDs use: first the
// pruning of nulls the schema does not allow (apiextensions-apiserver, defaulting/prunenulls.go:
// a null without `nullable: true` and without a default is dropped), then type, nullable,
// x-kubernetes-int-or-string, properties, additionalProperties, required, items, enum and int32.
// A field the schema does not define is reported: the server would prune it, and kubectl's
// default strict field validation turns that into an error.

export interface JsonSchema {
  type?: string;
  nullable?: boolean;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  format?: string;
  anyOf?: JsonSchema[];
  default?: unknown;
  "x-kubernetes-int-or-string"?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
}

/** The object as the API server would store it before validation: non-nullable nulls dropped. */
export function pruneNulls(value: unknown, schema: JsonSchema | undefined): unknown {
  if (Array.isArray(value)) return value.map((item) => pruneNulls(item, schema?.items));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const childSchema = schema?.properties?.[key] ?? (typeof schema?.additionalProperties === "object" ? schema.additionalProperties : undefined);
    if (child === null && childSchema && !childSchema.nullable && childSchema.default === undefined) continue;
    out[key] = pruneNulls(child, childSchema);
  }
  return out;
}

/** Problems of a custom object against a CRD version's openAPIV3Schema; empty when it is accepted. */
export function schemaProblems(object: unknown, schema: JsonSchema): string[] {
  const pruned = pruneNulls(object, schema) as Record<string, unknown>;
  // metadata is ObjectMeta, validated by the server itself, whatever the schema says.
  const { metadata: _metadata, ...rest } = pruned;
  return check(rest, { ...schema, required: schema.required?.filter((name) => name !== "metadata") ?? [] }, "");
}

const typeOf = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;

function check(value: unknown, schema: JsonSchema, path: string): string[] {
  const at = path || "(top level)";
  if (value === null) return schema.nullable ? [] : [`${at}: must not be null`];
  if (schema["x-kubernetes-int-or-string"]) {
    return typeOf(value) === "integer" || typeOf(value) === "string" ? [] : [`${at}: must be an integer or a string`];
  }
  const actual = typeOf(value);
  if (schema.type && schema.type !== actual && !(schema.type === "number" && actual === "integer")) return [`${at}: must be of type ${schema.type}, got ${actual}`];
  const problems: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: must be one of ${schema.enum.join(", ")}`);
  if (schema.format === "int32" && typeof value === "number" && (value < -(2 ** 31) || value >= 2 ** 31)) problems.push(`${at}: out of int32 range`);
  if (actual === "array") {
    (value as unknown[]).forEach((item, i) => problems.push(...(schema.items ? check(item, schema.items, `${path}[${i}]`) : [])));
  }
  if (actual === "object") problems.push(...checkObject(value as Record<string, unknown>, schema, path));
  return problems;
}

function checkObject(value: Record<string, unknown>, schema: JsonSchema, path: string): string[] {
  const problems: string[] = [];
  for (const name of schema.required ?? []) if (!(name in value)) problems.push(`${path ? `${path}.` : ""}${name}: required`);
  for (const [key, child] of Object.entries(value)) {
    const childPath = path ? `${path}.${key}` : key;
    const property = schema.properties?.[key];
    if (property) problems.push(...check(child, property, childPath));
    else if (typeof schema.additionalProperties === "object") problems.push(...check(child, schema.additionalProperties, childPath));
    else if (!schema["x-kubernetes-preserve-unknown-fields"] && schema.additionalProperties !== true) problems.push(`${childPath}: unknown field`);
  }
  return problems;
}

/**
 * Where a schema is not structural (apiextensions: every node has a type, or is int-or-string, or
 * preserves unknown fields; properties only on objects, items only on arrays, no additionalProperties
 * beside properties). Empty when structural.
 */
export function structuralProblems(schema: JsonSchema, path = "openAPIV3Schema"): string[] {
  const problems: string[] = [];
  if (!schema.type && !schema["x-kubernetes-int-or-string"] && !schema["x-kubernetes-preserve-unknown-fields"]) problems.push(`${path}: no type`);
  if (schema.properties && schema.type !== "object") problems.push(`${path}: properties on a ${schema.type ?? "typeless"} node`);
  if (schema.items && schema.type !== "array") problems.push(`${path}: items on a ${schema.type ?? "typeless"} node`);
  if (schema.type === "array" && !schema.items) problems.push(`${path}: an array without items`);
  if (schema.properties && schema.additionalProperties !== undefined) problems.push(`${path}: properties and additionalProperties together`);
  for (const [name, child] of Object.entries(schema.properties ?? {})) problems.push(...structuralProblems(child, `${path}.properties.${name}`));
  if (schema.items) problems.push(...structuralProblems(schema.items, `${path}.items`));
  if (typeof schema.additionalProperties === "object") problems.push(...structuralProblems(schema.additionalProperties, `${path}.additionalProperties`));
  if (schema["x-kubernetes-int-or-string"]) {
    const branches = (schema.anyOf ?? []).map((branch) => branch.type).sort().join(",");
    if (branches !== "" && branches !== "integer,string") problems.push(`${path}: int-or-string with anyOf other than integer and string`);
  }
  return problems;
}
