// `make test SPEC='dist/test/xds/**/*.test.js'` (or SPEC=... in the environment) runs some
// suites only; by default every suite runs.
'use strict';
module.exports = {
  spec: process.env.SPEC ? process.env.SPEC.split(/\s+/).filter(Boolean) : ['dist/test/**/*.test.js'],
  timeout: 60000,
  reporter: 'dist/test/summary-reporter.js',
  exit: true,
  require: ['dist/test/setup.js'],
  // The reliability suite measures the server's memory after a forced GC.
  'node-option': ['expose-gc'],
};
