#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzz_targets::webhook(data);
});
