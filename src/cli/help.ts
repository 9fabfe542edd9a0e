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
  const paragraphs: string[] = [];
  const options: HelpOption[] = [];
  let example: string[] | undefined;
  let fence: string[] | undefined;
  // The example is the first shell block; other blocks show output.
  let shellFence = false;
  let paragraph: string[] = [];
  const endParagraph = (): void => {
    if (paragraph.length > 0) paragraphs.push(paragraph.join(" "));
    paragraph = [];
  };
  // Rows of the section's first table (the options); later tables (e.g. endpoints) are not options.
  let tableRow = 0;
  let tables = 0;
  let inTable = false;
  for (const line of lines.slice(start + 1)) {
    if (fence) {
      if (line.startsWith("```")) {
        if (shellFence) example ??= fence;
        fence = undefined;
      } else fence.push(line);
      continue;
    }
    if (line.startsWith("#")) break;
    if (line.startsWith("```")) {
      endParagraph();
      fence = [];
      shellFence = line.trim() === "```sh";
    } else if (line.startsWith("|")) {
      endParagraph();
      if (!inTable) tables++;
      inTable = true;
      // The header row and the |---| row come first.
      if (tables > 1 || tableRow++ < 2) continue;
      const [option = "", fallback = "", meaning = ""] = line.slice(1, -1).split(" | ").map((cell) => cell.trim());
      options.push({ option: plain(option), default: plain(fallback), meaning: plain(meaning) });
    } else if (line.trim() === "") {
      endParagraph();
    } else {
      paragraph.push(line.trim());
    }
    if (!line.startsWith("|")) inTable = false;
  }
  endParagraph();
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
