// npm's postinstall: applies patches/ to the native `zookeeper` binding (patch-package) and
// rebuilds the addon, so the patched source is what runs. Installed as a dependency of another
// project, the binding is not in our own node_modules: say so and leave the install alone.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('node_modules/zookeeper/src/node-zk.cpp')) {
  console.warn('zkroute: node_modules/zookeeper is not here; apply patches/zookeeper+7.3.0.patch to your copy of the binding and rebuild it (see the README)');
  process.exit(0);
}
execSync('npx --no-install patch-package', { stdio: 'inherit' });
// node-gyp is on PATH in npm's lifecycle scripts (npm's own copy).
execSync('node-gyp rebuild', { cwd: 'node_modules/zookeeper', stdio: 'inherit' });
