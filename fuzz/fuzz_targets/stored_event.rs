//! libFuzzer target `stored_event`: see `duraflow_runtime::fuzz` (the same target `cargo test` runs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    duraflow_runtime::fuzz::stored_event(data);
});
