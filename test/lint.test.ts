// The lint gate of `npm test` (eslint.config.js), run as `npm run lint` runs it: eslint as a child
// process. On test/fixtures/lint, files that each break one rule, it must fail and name every rule;
// on the tree it must pass, so a violation anywhere fails `npm test`.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const ESLINT = join(ROOT, "node_modules", "eslint", "bin", "eslint.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function eslint(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ESLINT, ...args], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface FileReport {
  filePath: string;
  messages: { ruleId: string | null; line: number; message: string }[];
}

describe("npm run lint", () => {
  it("is a step of npm test, before vitest, and has a --fix companion", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts["lint"]).toBe("eslint .");
    expect(pkg.scripts["lint:fix"]).toBe("eslint . --fix");
    expect(pkg.scripts["test"]).toMatch(/ && eslint \. && vitest run$/);
  });

  it("fails on the broken fixture and names each rule at its line", async () => {
    const run = await eslint(["--no-ignore", "--format", "json", "test/fixtures/lint"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(1);
    const found = (JSON.parse(run.stdout) as FileReport[])
      .flatMap((file) => file.messages.map((m) => `${relative(join(ROOT, "test/fixtures/lint"), file.filePath)}:${m.line} ${m.ruleId}`))
      .sort();
    expect(found).toEqual([
      "src/admission/server.ts:2 no-restricted-imports",
      "src/api/layer.ts:2 no-restricted-imports",
      "src/cli/complex.ts:2 complexity",
      "src/cli/complex.ts:21 max-params",
      "src/cli/fastify-type.ts:2 no-restricted-imports",
      "src/cli/floating.ts:7 @typescript-eslint/no-floating-promises",
      "src/cli/spawn.ts:2 no-restricted-imports",
      "src/cli/type-import.ts:2 @typescript-eslint/consistent-type-imports",
      "src/cli/untyped.ts:2 @typescript-eslint/explicit-module-boundary-types",
      "src/policy/kube.ts:2 no-restricted-imports",
    ]);
  }, 120_000);

  it("prints each import boundary with the rule of README's Architecture section it breaks", async () => {
    const run = await eslint(["--no-ignore", "test/fixtures/lint/src/policy/kube.ts", "test/fixtures/lint/src/cli/spawn.ts", "test/fixtures/lint/src/admission/server.ts", "test/fixtures/lint/src/api/layer.ts"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("'@kubernetes/client-node' import is restricted from being used by a pattern. Only src/cluster/ and src/authz/ import @kubernetes/client-node (README, Architecture)");
    expect(run.stdout).toContain("'node:child_process' import is restricted from being used by a pattern. Only src/nft/ and src/cni/ spawn processes (README, Architecture)");
    expect(run.stdout).toContain("'fastify' import is restricted from being used by a pattern. Only webhook/ imports fastify (README, Architecture)");
    expect(run.stdout).toContain("'../cli/type-import.js' import is restricted from being used by a pattern. src/api/ is the bottom layer: it imports no other folder");
    expect(run.stdout).toContain("✖ 4 problems (4 errors, 0 warnings)");
  }, 120_000);

  it("passes on the tree", async () => {
    const run = await eslint(["."]);
    expect(run.stdout + run.stderr).toBe("");
    expect(run.code).toBe(0);
  }, 600_000);
});
