// JSON as the CNI layer reads and writes it. JSON.parse as a value: the text of a plugin's stdout, a
// cache file or a config is input like any other, and a parse failure is a message for the error
// that names where the text came from. Objects written out carry only keys with a value, as Go's
// `omitempty` does, so that what nadguard prints compares equal to what a Go plugin prints.
import { type Result, fail, ok } from "../api/errors.js";

/** The decoded value, or why the text is not JSON. */
export function decodeJson(text: string): Result<unknown, string> {
  try {
    return ok(JSON.parse(text));
  } catch (error) {
    return fail((error as Error).message);
  }
}

/** A copy with only the keys that have a value; `null` counts as none, as Go's decoder reads it. */
export function defined<T extends object>(object: T): { [K in keyof T]: Exclude<T[K], null> } {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined && value !== null)) as { [K in keyof T]: Exclude<T[K], null> };
}
