import type { Reporter, TestModule } from "vitest/node";

/** Ends the run with one plain line, `tests: N passed, N failed, N skipped`, that any CI log reader understands. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const mod of modules) {
      // A file that failed outside its tests (import, beforeAll) counts as a failure of its own.
      if (mod.state() === "failed" && ![...mod.children.allTests()].some((t) => t.result().state === "failed")) count.failed++;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") count.passed++;
        else if (state === "failed") count.failed++;
        else count.skipped++;
      }
    }
    process.stdout.write(`\ntests: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
