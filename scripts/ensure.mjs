#!/usr/bin/env node
// Installs what `npm start`, `npm test` and `npm run bench` need on a fresh machine, using
// Node built-ins only (it runs before node_modules exist):
//  - node modules (npm ci, or npm install when there is no lock file), when missing or stale;
//  - for test/bench: Debian's `chromium` (for Playwright and its SwiftShader Vulkan driver)
//    and `libvulkan1` (for Dawn in Node), through apt-get when root or with sudo; otherwise
//    it stops and prints the exact command to run. Never downloads a browser of its own.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2] ?? 'test';

function say(msg) {
  process.stderr.write(`[ensure] ${msg}\n`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    say(`failed: ${cmd} ${args.join(' ')}`);
    process.exit(r.status ?? 1);
  }
}

function nodeModulesFresh() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(marker)) return false;
  const lock = join(root, 'package-lock.json');
  const pkg = join(root, 'package.json');
  const t = statSync(marker).mtimeMs;
  return (!existsSync(lock) || statSync(lock).mtimeMs <= t) && statSync(pkg).mtimeMs <= t;
}

const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  say(`Node ${process.versions.node} is too old: QLoRA Studio needs Node 20 or newer.`);
  process.exit(1);
}

if (!nodeModulesFresh()) {
  const ci = existsSync(join(root, 'package-lock.json'));
  say(`installing node modules (npm ${ci ? 'ci' : 'install'})`);
  run('npm', [ci ? 'ci' : 'install', '--no-audit', '--no-fund']);
}

if (mode === 'test' || mode === 'bench') {
  const missing = [];
  if (!existsSync('/usr/bin/chromium') || !existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')) missing.push('chromium');
  if (!hasLibVulkan()) missing.push('libvulkan1');
  if (missing.length) {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const sudo = !isRoot && spawnSync('sudo', ['-n', 'true']).status === 0;
    const cmd = `apt-get update && apt-get install -y ${missing.join(' ')}`;
    if (!existsSync('/usr/bin/apt-get') || (!isRoot && !sudo)) {
      say(`missing system packages: ${missing.join(', ')}. Install them with:\n  sudo sh -c '${cmd}'`);
      process.exit(1);
    }
    say(`installing ${missing.join(', ')} with apt-get`);
    const apt = isRoot ? ['apt-get'] : ['sudo', '-n', 'apt-get'];
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run(apt[0], [...apt.slice(1), 'update', '-qq'], { env });
    run(apt[0], [...apt.slice(1), 'install', '-y', '-qq', ...missing], { env });
  }
}

function hasLibVulkan() {
  try {
    return execSync('ldconfig -p', { encoding: 'utf8' }).includes('libvulkan.so.1');
  } catch {
    return ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1'].some(existsSync);
  }
}
