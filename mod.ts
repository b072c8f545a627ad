/**
 * ReDrafter for TypeScript: Recurrent Drafter speculative decoding (Apple, arXiv 2403.09919) on Deno and in
 * browsers, with a pure-TS CPU reference backend, ONNX Runtime and WebGPU backends.
 *
 * @module
 */
export type * from "./core/types.ts";
export type * from "./loader/types.ts";
export * from "./core/mod.ts";
