//! Browser tests of wstether: see `tests/`. They run in headless Chromium
//! against a `wstether-testkit` server whose URL is given at compile time in
//! `WSTETHER_TESTKIT_URL`; `.ci/browser-tests` sets everything up.
