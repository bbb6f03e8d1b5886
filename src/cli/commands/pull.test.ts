import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestHub, tinyModelFiles, type TestHub } from '../../hub/test-server.ts';
import { loadModel } from '../../model/weights.ts';
import { resolveModelArg } from '../../node/resolve-model.ts';
import { REPO_ROOT } from '../../node/shared.ts';

const BIN = join(REPO_ROOT, 'bin/qlora.js');
const TOKEN = 'hf_CLIsecret_abcdefghijklmnop';
const BIG = new Uint8Array(3_000_000).map((_, i) => (i * 7 + (i >> 9)) & 255);
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

let hub: TestHub;
let cache: string;

beforeAll(async () => {
  hub = await startTestHub([
    { id: 'test/tiny', files: tinyModelFiles() },
    { id: 'test/big', files: { 'config.json': '{"model_type":"llama"}', 'model.safetensors': BIG } },
    { id: 'test/gated', token: TOKEN, files: { 'config.json': '{}' } },
  ]);
});
afterAll(() => hub?.close());
beforeEach(() => {
  hub.clearFaults();
  hub.resetCounters();
  cache = mkdtempSync(join(tmpdir(), 'qlora-cli-cache-'));
});

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  delete e.HF_TOKEN;
  delete e.HF_ENDPOINT;
  return { ...e, QLORA_CACHE: cache, ...extra };
}

/** Runs the CLI asynchronously (the test hub lives in this process and must keep answering). */
function qlora(args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: env(extra), timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('qlora pull / cache', () => {
  it('pulls into $QLORA_CACHE, prints the folder, lists and removes it', async () => {
    const r = await qlora(['pull', 'test/tiny', '--endpoint', hub.url]);
    expect(r.stderr).toMatch(/pulling test\/tiny@main from http:\/\/127\.0\.0\.1:\d+ into /);
    expect(r.stderr).toMatch(/done {5}model-00001-of-00002\.safetensors/);
    expect(r.code).toBe(0);
    const dir = r.stdout.trim();
    expect(dir).toBe(join(cache, 'v1/models/test/tiny@main/files'));
    for (const [name, v] of Object.entries(tinyModelFiles())) expect(sha(readFileSync(join(dir, name)))).toBe(sha(v));
    // The cached model is a model argument now.
    const { config } = await loadModel(await resolveModelArg('test/tiny', { cacheDir: cache }));
    expect(config.numLayers).toBe(2);
    await expect(resolveModelArg('test/other@v2', { cacheDir: cache })).rejects.toThrow(/not in the model cache .*qlora pull test\/other --revision v2/);

    const ls = await qlora(['cache', 'ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/test\/tiny\s+main\s+4\/4\s+[\d.]+ KiB\s+complete/);
    const json = JSON.parse((await qlora(['cache', 'ls', '--json'])).stdout);
    expect(json.root).toBe(cache);
    expect(json.models[0]).toMatchObject({ repo: 'test/tiny', revision: 'main', complete: true, files: 4, path: join(cache, 'v1/models/test/tiny@main') });

    const miss = await qlora(['cache', 'rm', 'test/nope']);
    expect(miss.code).toBe(2);
    expect(miss.stderr).toMatch(/no cached model test\/nope .*\(cached: test\/tiny@main\)/);
    const rm = await qlora(['cache', 'rm', 'test/tiny@main']);
    expect(rm.stdout).toMatch(/removed test\/tiny@main \([\d.]+ KiB\)/);
    expect(existsSync(join(cache, 'v1/models/test'))).toBe(false);
    expect((await qlora(['cache', 'ls'])).stdout).toMatch(/no models in the cache/);
    expect(readdirSync(cache)).toEqual(['version.json']);
  });

  it('resumes after the process is interrupted mid-shard, with no byte fetched twice', async () => {
    hub.fault({ repo: 'test/big', file: 'model.safetensors', stallAfter: 1_500_000 });
    const child = spawn(process.execPath, [BIN, 'pull', 'test/big', '--endpoint', hub.url], { cwd: REPO_ROOT, env: env() });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
    for (let i = 0; i < 400 && hub.sent('test/big', 'model.safetensors') < 1_500_000; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // let the client take in what was sent
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/download cancelled \(what was fetched is kept; download again to resume\)/);
    const partial = JSON.parse((await qlora(['cache', 'ls', '--json'])).stdout).models[0];
    expect(partial).toMatchObject({ repo: 'test/big', complete: false, partialBytes: 1_500_000 });
    expect((await qlora(['cache', 'ls'])).stdout).toMatch(/test\/big\s+main\s+1\/2\s+.*partial 50% \(pull again to resume\)/);

    const r = await qlora(['pull', 'test/big', '--endpoint', hub.url, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/resuming model\.safetensors at 1\.4 MiB/);
    const out = JSON.parse(r.stdout);
    expect(out.files.find((f: { name: string }) => f.name === 'model.safetensors')).toMatchObject({ resumedFrom: 1_500_000, fetched: 1_500_000, sha256: sha(BIG) });
    expect(hub.sent('test/big', 'model.safetensors')).toBe(BIG.byteLength);
    expect(sha(readFileSync(join(out.path, 'model.safetensors')))).toBe(sha(BIG));
  });

  it('reads the token from --token-env (default HF_TOKEN), sends it, and never prints it', async () => {
    const no = await qlora(['pull', 'test/gated', '--endpoint', hub.url]);
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/qlora: test\/gated@main: repo info: HTTP 401 \(unauthorized\): test\/gated is gated or private/);
    const unset = await qlora(['pull', 'test/gated', '--endpoint', hub.url, '--token-env', 'MY_TOKEN']);
    expect(unset.stderr).toMatch(/--token-env MY_TOKEN: the environment variable MY_TOKEN is not set/);
    const bad = await qlora(['pull', 'test/gated', '--endpoint', hub.url, '--token-env', 'MY_TOKEN'], { MY_TOKEN: TOKEN + 'z' });
    expect(bad.stderr).toMatch(/the access token was refused/);
    const ok = await qlora(['pull', 'test/gated'], { HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN });
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/with the token in \$HF_TOKEN/);
    for (const t of [no, unset, bad, ok]) expect(t.stdout + t.stderr).not.toContain(TOKEN);
  });

  it('explains a missing repo and a bad repo id', async () => {
    const r = await qlora(['pull', 'test/missing', '--endpoint', hub.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/HTTP 404 \(not found\): no repo test\/missing/);
    const bad = await qlora(['pull', '../etc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/is not a repo id/);
  });
});
