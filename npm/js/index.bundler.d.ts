export { WsTetherConnection } from "./wstether.js";
export type {
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
/** Does nothing: with a bundler the module is ready once imported. */
export default function init(): Promise<void>;
