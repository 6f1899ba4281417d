//! `wstether-testkit`: runs the wstether test server until told to stop.
fn main() {}
