// Build the phone app into adapters/phone/app/ (committed; shipped as Python package data, so
// `pip install keystead` needs no Node). Output is deterministic: the same sources give the same
// bytes, which `scripts/test` checks with a rebuild and `git diff --exit-code`.
//
//   node build.mjs            build
//   node build.mjs --sizes    build and print the compressed size of JS + WASM

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'app');
const KEEP = new Set(['__init__.py']); // the Python side may make app/ a package
const hash = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 10);
const hashed = (name, bytes) => name.replace(/(\.[a-z]+)$/, `.${hash(bytes)}$1`);

mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) if (!KEEP.has(f)) rmSync(join(out, f), { recursive: true, force: true });

const files = new Map(); // output path (relative to app/) -> bytes
const common = { bundle: true, minify: true, write: false, legalComments: 'none', target: ['es2022', 'chrome100', 'safari16', 'firefox110'], logLevel: 'warning' };

// The Umbral WASM, content-hashed; the app tells the library where it is.
const wasm = readFileSync(join(here, 'node_modules/@nucypher/umbral-pre/pkg-bundler/umbral_pre_wasm_bg.wasm'));
const wasmName = hashed('umbral.wasm', wasm);
files.set(wasmName, wasm);

const app = await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src/ui/main.ts')],
  format: 'esm',
  define: { __UMBRAL_WASM__: JSON.stringify(wasmName) },
  outfile: 'app.js',
});
const appJs = app.outputFiles[0].contents;
files.set(hashed('app.js', appJs), appJs);
const css = readFileSync(join(here, 'static/app.css'));
files.set(hashed('app.css', css), css);

// Static files as they are (icons, manifest); index.html names the hashed assets.
const walk = (dir) => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
for (const path of walk(join(here, 'static'))) {
  const rel = relative(join(here, 'static'), path);
  if (rel === 'app.css' || rel === 'index.html') continue;
  files.set(rel, readFileSync(path));
}
const names = { 'app.js': hashed('app.js', appJs), 'app.css': hashed('app.css', css) };
const html = readFileSync(join(here, 'static/index.html'), 'utf8').replace(/\{\{([a-z.]+)\}\}/g, (_, k) => {
  if (!names[k]) throw new Error(`index.html names unknown asset ${k}`);
  return names[k];
});
files.set('index.html', Buffer.from(html));

// The service worker keeps a stable name (its scope is /app/) and lists what it precaches; its
// version changes whenever any file does, so a new build replaces the old cache.
const precache = ['./', ...[...files.keys()].sort().map((f) => `./${f}`)];
const version = hash(Buffer.concat([...files.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([k, v]) => [Buffer.from(k), v])));
const sw = await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src/ui/sw.ts')],
  format: 'iife',
  define: { __PRECACHE__: JSON.stringify(precache), __VERSION__: JSON.stringify(version) },
  outfile: 'sw.js',
});
files.set('sw.js', sw.outputFiles[0].contents);

for (const [rel, bytes] of files) {
  mkdirSync(dirname(join(out, rel)), { recursive: true });
  writeFileSync(join(out, rel), bytes);
}
writeFileSync(join(out, 'build.json'), JSON.stringify({ version, files: [...files.keys()].sort() }, null, 1) + '\n');

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const code = [...files.entries()].filter(([f]) => /\.(js|wasm)$/.test(f));
const raw = code.reduce((n, [, b]) => n + b.length, 0);
const gz = code.reduce((n, [, b]) => n + gzipSync(b, { level: 9 }).length, 0);
const br = code.reduce((n, [, b]) => n + brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length, 0);
const line = `phone app built in ${relative(process.cwd(), out) || '.'}: JS + WASM ${kib(raw)} raw, ${kib(gz)} gzip, ${kib(br)} brotli (${code.map(([f]) => f).join(', ')})`;
console.log(line);
if (process.argv.includes('--sizes')) console.log(JSON.stringify({ raw, gzip: gz, brotli: br }));
