// `nadguard COMMAND --help`: the command's section of README.md, read at run time and rendered for
// a terminal, so that the help page and README cannot drift: its first paragraph, the option table
// (each option with its default), the "Exit codes:" paragraph and the first example. A test holds
// every section to the options the parser knows, both ways.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PACKAGE_ROOT } from "./package.js";

export interface HelpOption {
  /** As README's first column, e.g. `--tls-cert FILE, --tls-key FILE`. */
  option: string;
  default: string;
  meaning: string;
}

export interface HelpSection {
  description: string;
  options: HelpOption[];
  exitCodes?: string;
  example?: string[];
}

const WIDTH = 100;

/** The section `### \`nadguard COMMAND …\`` of a README, or undefined when it has none. */
export function readmeSection(readme: string, command: string): HelpSection | undefined {
  const lines = readme.split("\n");
  const start = lines.findIndex((line) => new RegExp(`^### \`nadguard ${command}[\` ]`).test(line));
  if (start < 0) return undefined;
  const blocks = blocksOf(lines.slice(start + 1));
  const paragraphs = blocks.flatMap((block) => (block.kind === "paragraph" ? [block.text] : []));
  // The section's first table lists the options (after its header and |---| rows); later tables
  // (e.g. endpoints) are not options. The example is the first shell block; other blocks show output.
  const table = blocks.find((block): block is Extract<Block, { kind: "table" }> => block.kind === "table");
  const options = (table?.lines.slice(2) ?? []).map((line): HelpOption => {
    const [option = "", fallback = "", meaning = ""] = line.slice(1, -1).split(" | ").map((cell) => cell.trim());
    return { option: plain(option), default: plain(fallback), meaning: plain(meaning) };
  });
  const example = blocks.find((block): block is Extract<Block, { kind: "code" }> => block.kind === "code" && block.shell)?.lines;
  const exitCodes = paragraphs.find((text) => text.startsWith("Exit codes:"));
  return {
    description: plain(paragraphs[0] ?? ""),
    options,
    ...(exitCodes !== undefined && { exitCodes: plain(exitCodes.slice("Exit codes:".length).trim()) }),
    ...(example !== undefined && { example }),
  };
}

/** The help page of a command: its usage line, then README's section; the usage line alone without a README. */
export async function helpPage(command: string, usage: string, readmeFile = join(PACKAGE_ROOT, "README.md")): Promise<string> {
  const readme = await readFile(readmeFile, "utf8").catch(() => "");
  const section = readmeSection(readme, command);
  if (!section) return `usage: ${usage}`;
  const lines = [`usage: ${usage}`, "", ...wrap(section.description, "")];
  if (section.options.length > 0) {
    lines.push("", "options:");
    for (const row of section.options) {
      lines.push(`  ${row.option}`, ...wrap(row.meaning, "      "));
      lines.push(...wrap(/required/.test(row.default) ? row.default.replace(/^\((.*)\)$/, "$1") : `default: ${row.default}`, "      "));
    }
  }
  if (section.exitCodes) lines.push("", ...wrap(`exit codes: ${section.exitCodes}`, ""));
  if (section.example) lines.push("", "example:", ...section.example.map((line) => `  ${line}`));
  return lines.join("\n");
}

/** A block of a README section: a paragraph (its lines joined), a table's rows, or a fenced block's lines. */
type Block = { kind: "paragraph"; text: string } | { kind: "table"; lines: string[] } | { kind: "code"; shell: boolean; lines: string[] };

/** The blocks of a section's lines, up to the next heading (or an unclosed fence, which ends it). */
function blocksOf(lines: readonly string[]): Block[] {
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length && !lines[i]!.startsWith("#")) {
    const line = lines[i]!;
    if (line.startsWith("```")) {
      const close = lines.findIndex((next, j) => j > i && next.startsWith("```"));
      if (close < 0) break;
      blocks.push({ kind: "code", shell: line.trim() === "```sh", lines: lines.slice(i + 1, close) });
      i = close + 1;
    } else if (line.trim() === "") {
      i++;
    } else {
      const table = line.startsWith("|");
      const run = runFrom(lines, i, table ? (next) => next.startsWith("|") : startsParagraphLine);
      blocks.push(table ? { kind: "table", lines: run } : { kind: "paragraph", text: run.map((text) => text.trim()).join(" ") });
      i += run.length;
    }
  }
  return blocks;
}

/** A line that continues a paragraph: not blank, not a table row, a fence or a heading. */
const startsParagraphLine = (line: string): boolean => line.trim() !== "" && !/^(\||```|#)/.test(line);

/** The lines from `start` on while `belongs` holds. */
function runFrom(lines: readonly string[], start: number, belongs: (line: string) => boolean): string[] {
  let end = start;
  while (end < lines.length && belongs(lines[end]!)) end++;
  return lines.slice(start, end);
}

/** Markdown inline formatting to plain text: code spans, bold, links. */
function plain(text: string): string {
  return text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\*\*([^*]*)\*\*/g, "$1")
    .replace(/`([^`]*)`/g, "$1");
}

/** Words filled into lines of at most WIDTH columns, each starting with `indent`. */
function wrap(text: string, indent: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines;
}
