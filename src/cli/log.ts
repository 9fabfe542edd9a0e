// JSON log lines for the long-running commands, one object per line in pino's format (`level` as
// a number, `time`, `pid`, `hostname`, `msg`, then the event's fields): the webhook logs through
// fastify's pino, the enforcer, which does not load fastify, through pino itself, so a log
// collector reads both alike.
import { pino, type Logger } from "pino";
import { UsageError } from "./io.js";

/** pino's levels, as `--log-level` takes them. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export type LogLevelName = (typeof LOG_LEVELS)[number];

/** A `--log-level` value; anything else is a usage error naming the levels. */
export function parseLogLevel(value: string): LogLevelName {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new UsageError(`--log-level ${value}: expected one of ${LOG_LEVELS.join(", ")}`);
  return value as LogLevelName;
}

/** A logger at `level` whose every line (without its newline) goes to `line`, synchronously. */
export function jsonLogger(level: LogLevelName, line: (text: string) => void): Logger {
  return pino({ level }, { write: (text: string) => line(text.endsWith("\n") ? text.slice(0, -1) : text) });
}
