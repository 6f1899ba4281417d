// The package's entry (--target web): init from the generated glue, then
// WsTether (tether.js) and the low level, WsTetherConnection.
export { default, initSync, WsTetherConnection } from "./wstether.js";
export { WsTether, isWsTetherError } from "./tether.js";
