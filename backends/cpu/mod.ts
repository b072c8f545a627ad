/**
 * The CPU reference backend.
 *
 * @module
 */
export { type CpuModelOptions, createCpuModel } from "./model.ts";
export { CpuSession, type ForwardProfile } from "./session.ts";
