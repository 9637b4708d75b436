// The pkg-bundler glue of @nucypher/umbral-pre has no types of its own: it is the same API.
declare module '@nucypher/umbral-pre/pkg-bundler/umbral_pre_wasm_bg.js' {
  export * from '@nucypher/umbral-pre';
  export function __wbg_set_wasm(exports: unknown): void;
}
