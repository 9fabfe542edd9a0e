// Ends a test run with one plain line, `N passed, N failed, N skipped`, that CI reads as the verdict.
import type { Reporter, TestModule } from "vitest/node";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      // A file whose hook or import failed has its tests skipped: they count as failed, and a file
      // that failed before defining any test counts as one failure, so the line never says 0 failed
      // for a red run.
      const moduleFailed = module.state() === "failed";
      let counted = 0;
      for (const test of module.children.allTests()) {
        counted++;
        const state = test.result().state;
        if (state === "passed") counts.passed++;
        else if (state === "failed" || moduleFailed) counts.failed++;
        else counts.skipped++;
      }
      if (moduleFailed && counted === 0) counts.failed++;
    }
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
