//! libFuzzer target `workflow_error`: see `duraflow_runtime::fuzz` (the same target `cargo test` runs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    duraflow_runtime::fuzz::workflow_error(data);
});
