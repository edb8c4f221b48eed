// The example harness's own ava config: `npx ava --config examples/test-harness/ava.config.js`.
export default {
  files: ['examples/test-harness/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '60s',
};
