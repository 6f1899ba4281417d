export { WsTetherConnection } from "./wstether.js";
export * from "./tether.js";
/** Does nothing: with a bundler the module is ready once imported. */
export default function init(): Promise<void>;
