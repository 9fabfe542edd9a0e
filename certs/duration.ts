// Durations for the certificate lifetimes and the renewal margin of `nadguard certs`, written as
// Go's time.ParseDuration writes them (`720h`, `1h30m`, what cert-manager's renewBefore takes)
// plus days (`30d`), which is how certificate lifetimes are usually thought of.

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 };
const PART = /(\d+(?:\.\d+)?)([dhms])/gy;

/**
 * Parses `30d`, `720h`, `1d12h`, `90m`, `3600s` into milliseconds. Returns undefined for anything
 * else: an empty string, a bare number (the unit is never guessed), a negative or zero duration,
 * an unknown unit.
 */
export function parseDuration(text: string): number | undefined {
  const value = text.trim();
  if (value === "") return undefined;
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let match = PART.exec(value); match !== null; match = PART.exec(value)) {
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    consumed = PART.lastIndex;
  }
  if (consumed !== value.length || !(total > 0) || !Number.isFinite(total)) return undefined;
  return total;
}

/** `365d`, `30d12h`, `90m`: whole days first, then what is left, for messages. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  const parts: string[] = [];
  let left = Math.round(ms / 1000) * 1000;
  for (const [unit, size] of Object.entries(UNIT_MS)) {
    const count = Math.floor(left / size);
    if (count > 0) parts.push(`${count}${unit}`);
    left -= count * size;
  }
  return parts.join("") || "0s";
}
