import Mocha = require('mocha');
import { Watchdog } from './watchdog';

/**
 * Mocha's spec reporter plus one plain closing line, `N passed, N failed, N skipped`, which
 * CI reads to tell a run that tested something from one that tested nothing; and the
 * watchdog that turns a hang into a failure naming where it hung.
 */
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const watchdog = new Watchdog();
    const { EVENT_SUITE_BEGIN, EVENT_TEST_BEGIN, EVENT_HOOK_BEGIN } = Mocha.Runner.constants;
    runner.on(EVENT_SUITE_BEGIN, (suite: Mocha.Suite) => {
      if (suite.parent?.root) watchdog.fileStarted(`${suite.file ?? '?'}: ${suite.fullTitle()}`);
    });
    runner.on(EVENT_TEST_BEGIN, (test: Mocha.Test) => watchdog.at(`${test.file ?? '?'}: ${test.fullTitle()}`));
    runner.on(EVENT_HOOK_BEGIN, (hook: Mocha.Hook) => watchdog.at(`${hook.file ?? hook.parent?.file ?? '?'}: ${hook.fullTitle()}`));
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      watchdog.stop();
      const s = runner.stats;
      if (!s) return;
      // After the spec reporter's own epilogue.
      process.nextTick(() => console.log(`${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`));
    });
  }
}

export = SummaryReporter;
