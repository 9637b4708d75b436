// Test setup: IndexedDB from fake-indexeddb (tests only), and the Umbral WASM read from node_modules.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configureUmbral, umbralReady } from '../src/protocol/umbral.js';

const require = createRequire(import.meta.url);
const pkg = dirname(require.resolve('@nucypher/umbral-pre/package.json'));
configureUmbral(() => readFileSync(join(pkg, 'pkg-bundler', 'umbral_pre_wasm_bg.wasm')));
await umbralReady();

export const WEB = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = join(WEB, '..', '..', '..');
export const PYTHON = join(REPO, '.venv', 'bin', 'python');
export const KEYSTEAD = join(REPO, '.venv', 'bin', 'keystead');
