export { default, initSync, WsTetherConnection } from "./wstether.js";
export type { InitInput, InitOutput, SyncInitInput } from "./wstether.js";
export * from "./tether.js";
