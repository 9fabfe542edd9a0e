// Name rules from Kubernetes (apimachinery validation) and Linux (interface names).

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** RFC 1123 label: at most 63 characters, lower-case alphanumerics and '-', alphanumeric at both ends. */
export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

/** RFC 1123 subdomain: at most 253 characters, dot-separated labels. */
export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

/** IFNAMSIZ is 16 with the terminating NUL: 15 characters at most. */
export const MAX_INTERFACE_NAME = 15;

/**
 * Why a Linux interface name is invalid, or undefined when it is valid: 1-15 characters, no '/',
 * no whitespace, no ':' (alias syntax), and neither '.' nor '..'.
 */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return "is empty";
  if (name.length > MAX_INTERFACE_NAME) return `is ${name.length} characters long; Linux allows at most ${MAX_INTERFACE_NAME}`;
  if (name.includes("/")) return "contains '/'";
  if (/\s/.test(name)) return "contains whitespace";
  if (name.includes(":")) return "contains ':'";
  if (name === "." || name === "..") return `is '${name}'`;
  return undefined;
}

/** A Kubernetes qualified name (label key / resource name): optional DNS subdomain prefix and '/' then a name part. */
export function isQualifiedName(value: string): boolean {
  const parts = value.split("/");
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1] ?? "";
  if (parts.length === 2 && !isDns1123Subdomain(parts[0] ?? "")) return false;
  return name.length > 0 && name.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name);
}

/** A label value: empty, or at most 63 characters of alphanumerics, '-', '_' and '.', alphanumeric at both ends. */
export function isLabelValue(value: string): boolean {
  return value === "" || (value.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(value));
}
