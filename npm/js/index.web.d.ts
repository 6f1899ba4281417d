export { default, initSync, WsTetherConnection } from "./wstether.js";
export type {
  InitInput,
  InitOutput,
  SyncInitInput,
  WsTetherData,
  WsTetherDownKind,
  WsTetherError,
  WsTetherErrorKind,
  WsTetherEvent,
  WsTetherFrameKind,
  WsTetherOptions,
  WsTetherStats,
} from "./wstether.js";
export * from "./tether.js";
