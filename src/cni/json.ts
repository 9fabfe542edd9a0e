// JSON.parse as a value: the text of a plugin's stdout, a cache file or a config is input like any
// other, and a parse failure is a message for the error that names where the text came from.
import { type Result, fail, ok } from "../api/errors.js";

/** The decoded value, or why the text is not JSON. */
export function decodeJson(text: string): Result<unknown, string> {
  try {
    return ok(JSON.parse(text));
  } catch (error) {
    return fail((error as Error).message);
  }
}
