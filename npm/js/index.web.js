// The package's entry (--target web): init from the generated glue, then
// WsTether (tether.js) and the low level, WsTetherConnection (only in a
// build with the npm crate's feature `connection`: npm/add-entry drops it
// from this line otherwise).
export { default, initSync, WsTetherConnection } from "./wstether.js";
export { WsTether, isWsTetherError } from "./tether.js";
