// The package's entry (--target bundler): the bundler loads the wasm on
// import, so init() does nothing; it is here so that code written for
// --target web (`await init()`) runs unchanged. WsTetherConnection: only
// in a build with the npm crate's feature `connection` (npm/add-entry
// drops the line otherwise).
export { WsTetherConnection } from "./wstether.js";
export { WsTether, isWsTetherError } from "./tether.js";
export default async function init() {}
