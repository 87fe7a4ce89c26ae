// Prints the plain "N passed, N failed" line that CI reads, after jest's own summary.
class CountReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const suites = results.numFailedTestSuites - countSuitesWithFailedTests(results);
    // A suite that fails to load has no failed test of its own: count it as one.
    const failed = results.numFailedTests + Math.max(0, suites);
    let line = `${results.numPassedTests} passed, ${failed} failed`;
    if (skipped > 0) {
      line += `, ${skipped} skipped`;
    }
    process.stdout.write(`\n${line}\n`);
  }
}

function countSuitesWithFailedTests(results) {
  return results.testResults.filter(r => r.numFailingTests > 0).length;
}

module.exports = CountReporter;
