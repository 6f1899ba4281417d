//! The Autobahn|Testsuite client run of wstether in a browser: see
//! `tests/autobahn.rs`. It runs in headless Chromium against a fuzzing
//! server whose URL is given at compile time in `AUTOBAHN_URL`;
//! `.ci/autobahn-browser` sets everything up.
