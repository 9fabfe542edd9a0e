// Label selectors (metav1.LabelSelector), compiled once into predicates. The semantics are those of
// k8s.io/apimachinery's LabelSelectorAsSelector: matchLabels and matchExpressions are ANDed, `{}`
// selects everything; In/NotIn need values, Exists/DoesNotExist must have none. An invalid selector
// selects nothing (never more than asked) and is reported.
import type { Problem } from "../api/errors.js";
import type { LabelSelector } from "../api/objects.js";

export type Labels = Readonly<Record<string, string>>;

export interface CompiledSelector {
  readonly matches: (labels: Labels) => boolean;
  /** True for `{}`: every object matches (lets callers skip iterating). */
  readonly everything: boolean;
  /** True when the selector was invalid and matches nothing. */
  readonly invalid: boolean;
  /** The label keys it reads: whether it matches changes only when one of these does (none for `everything` and `invalid`). */
  readonly keys: readonly string[];
}

const NOTHING: CompiledSelector = { matches: () => false, everything: false, invalid: true, keys: [] };
const EVERYTHING: CompiledSelector = { matches: () => true, everything: true, invalid: false, keys: [] };

type Requirement = (labels: Labels) => boolean;

function requirement(key: string, operator: string, values: readonly string[], path: string, problems: Problem[]): Requirement | undefined {
  const bad = (message: string): undefined => {
    problems.push({ code: "policy.selector", path, message: `${message}; the selector matches nothing` });
    return undefined;
  };
  if (key === "") return bad("a requirement needs a key");
  switch (operator) {
    case "In":
    case "NotIn": {
      if (values.length === 0) return bad(`operator ${operator} needs at least one value`);
      const set = new Set(values);
      return operator === "In"
        ? (labels) => Object.hasOwn(labels, key) && set.has(labels[key]!)
        : (labels) => !Object.hasOwn(labels, key) || !set.has(labels[key]!);
    }
    case "Exists":
    case "DoesNotExist":
      if (values.length > 0) return bad(`operator ${operator} takes no values`);
      return operator === "Exists" ? (labels) => Object.hasOwn(labels, key) : (labels) => !Object.hasOwn(labels, key);
    default:
      return bad(`unknown operator "${operator}"`);
  }
}

/** Compiles a selector; `path` names it in problems (e.g. `spec.ingress[0].from[1].podSelector`). */
export function compileSelector(selector: LabelSelector | null | undefined, path: string, problems: Problem[]): CompiledSelector {
  if (!selector) return EVERYTHING;
  const requirements: Requirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    requirements.push((labels) => labels[key] === value && Object.hasOwn(labels, key));
  }
  let valid = true;
  (selector.matchExpressions ?? []).forEach((expr, i) => {
    const req = requirement(expr.key, expr.operator, expr.values ?? [], `${path}.matchExpressions[${i}]`, problems);
    if (req) requirements.push(req);
    else valid = false;
  });
  if (!valid) return NOTHING;
  if (requirements.length === 0) return EVERYTHING;
  const keys = [...new Set([...Object.keys(selector.matchLabels ?? {}), ...(selector.matchExpressions ?? []).map((e) => e.key)])];
  return { matches: (labels) => requirements.every((r) => r(labels)), everything: false, invalid: false, keys };
}
