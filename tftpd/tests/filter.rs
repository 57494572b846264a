//! The packet filter's fallbacks: the userspace path and classic BPF (which needs no
//! privilege) each get the fixed junk/valid mix (see `harness::junk`); the junk is dropped
//! and counted exactly, and the transfer still completes.

mod harness;

#[test]
fn junk_mix_is_dropped_and_counted_and_the_transfer_completes() {
    harness::junk::run_mix("userspace", &[], "");
}

#[test]
fn classic_bpf_drops_the_same_mix_in_the_kernel() {
    let (d, _) = harness::junk::run_mix("cbpf", &["--ebpf", "cbpf"], "");
    assert!(
        d.log()
            .contains("packet filter: classic BPF socket filters attached"),
        "the daemon says which filter it runs:\n{}",
        d.log()
    );
}
