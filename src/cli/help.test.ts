// Every command's help page is its README section: the section must exist, list exactly the options
// the parser accepts (so a new flag without a README row fails here), give the parser's defaults,
// the exit codes and an example of the command.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "./commands.js";
import { helpPage, readmeSection } from "./help.js";
import { PACKAGE_ROOT } from "./package.js";

const readme = await readFile(join(PACKAGE_ROOT, "README.md"), "utf8");

describe.each(Object.entries(COMMANDS))("README's section of nadguard %s", (name, command) => {
  const section = readmeSection(readme, name);

  it("lists exactly the options the command accepts, each with a default and a meaning", () => {
    expect(section, `README has no "### \`nadguard ${name}\`" section`).toBeDefined();
    const documented = section!.options.flatMap((row) => [...row.option.matchAll(/--([a-z][a-z-]*)/g)].map((match) => match[1]!));
    expect(documented.sort()).toEqual(Object.keys(command.options).sort());
    for (const row of section!.options) expect({ option: row.option, default: row.default !== "", meaning: row.meaning !== "" }).toEqual({ option: row.option, default: true, meaning: true });
  });

  it("gives the parser's default of every option that has one", () => {
    for (const [flag, spec] of Object.entries(command.options)) {
      if (typeof spec.default !== "string") continue;
      // The whole flag: `--out` is not the row of `--out-dir`.
      const row = section!.options.find((r) => new RegExp(`--${flag}(?![a-z-])`).test(r.option));
      expect(row?.default, `--${flag}`).toContain(spec.default);
    }
  });

  it("states the exit codes and shows an example of the command", () => {
    expect(section!.exitCodes).toMatch(/\b0 .*\b2 usage error/);
    expect(section!.example?.[0]).toMatch(new RegExp(`^npx nadguard ${name} `));
  });

  it("is what --help prints after the usage line", async () => {
    const page = await helpPage(name, command.usage);
    expect(page.split("\n").slice(0, 2)).toEqual([`usage: ${command.usage}`, ""]);
    expect(page).toContain(`exit codes: ${section!.exitCodes!.split(" ").slice(0, 3).join(" ")}`);
    expect(page).toContain(`example:\n  ${section!.example![0]}`);
  });
});

describe("helpPage", () => {
  it("falls back to the usage line without a README", async () => {
    expect(await helpPage("admit", "nadguard admit FILE", join(PACKAGE_ROOT, "no-such-readme.md"))).toBe("usage: nadguard admit FILE");
  });
});
