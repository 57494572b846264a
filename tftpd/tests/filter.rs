//! The packet filter, userspace path: the fixed junk/valid mix (see `harness::junk`) is
//! dropped and counted exactly, and the transfer still completes.

mod harness;

#[test]
fn junk_mix_is_dropped_and_counted_and_the_transfer_completes() {
    harness::junk::run_mix("userspace", &[], "");
}
