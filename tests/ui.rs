//! Compile-time behaviour of `#[activity]` and `#[workflow]`: what compiles (`ui-tests/pass`), and
//! what is rejected with which message (`ui-tests/fail/*.rs` with their `.stderr`).
//!
//! Regenerate the expected messages with `TRYBUILD=overwrite cargo test --test ui`, then read every
//! changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui-tests/fail/*.rs");
    t.pass("ui-tests/pass/*.rs");
}
