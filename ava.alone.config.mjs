// Tests that load the machine on purpose (hundreds of ZooKeeper sessions in one process) and
// so run on their own, after the main suite (.ci/run, `npm run test:alone`): beside other files
// they would push timing assertions elsewhere over their bounds.
export default {
  files: ['test/**/*.alone.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '120s',
  concurrency: 1,
};
