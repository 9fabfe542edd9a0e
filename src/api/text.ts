// Cutting text that quotes input (a denial, a warning, an element of an annotation) to a bound:
// one helper for every layer, so every message is cut the same way.

/**
 * Cuts `text` to at most `max` characters (code points, so never half a surrogate pair), the last
 * an ellipsis. Reads and copies only what it keeps: O(max), not O(text.length).
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return "";
  let end = 0;
  let points = 0;
  let keep = 0;
  while (end < text.length && points < max) {
    if (points === max - 1) keep = end;
    const code = text.charCodeAt(end);
    end += code >= 0xd800 && code <= 0xdbff && end + 1 < text.length ? 2 : 1;
    points++;
  }
  return end >= text.length ? text : `${text.slice(0, keep)}…`;
}
