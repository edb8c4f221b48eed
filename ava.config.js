// Tests clone sandboxes from the main thread of each test process (a worker
// thread would be the "parent" whose death kills them), and the suites that
// touch cgroups and mounts are kept serial within a file.
export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  concurrency: 2,
  timeout: '120s',
  serial: false,
};
