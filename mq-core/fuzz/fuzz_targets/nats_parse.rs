#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mq_core::fuzzing::nats_parse(data));
