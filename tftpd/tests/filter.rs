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

#[test]
fn a_small_max_blksize_still_lets_512_byte_blocks_through() {
    // A client that negotiates nothing sends RFC 1350's 512-byte blocks whatever
    // max_blksize says; the filters must keep them (they once dropped them as oversized).
    for filter in ["off", "cbpf"] {
        let d = harness::Daemon::start(harness::DaemonArgs {
            args: vec![
                "--ebpf".into(),
                filter.into(),
                "--write".into(),
                "create".into(),
            ],
            config: Some("[protocol]\nmax_blksize = 256\n".into()),
            ..harness::DaemonArgs::default()
        });
        let dir = harness::TempDir::new("small-blk");
        let local = dir.path().join("up.bin");
        let content = harness::pattern(3000, 5);
        std::fs::write(&local, &content).expect("write");
        harness::clients::put(
            harness::clients::Client::TftpHpa,
            d.addr(),
            &local,
            "up.bin",
            &harness::clients::Opts::default(),
        )
        .unwrap_or_else(|e| panic!("{filter}: upload in 512-byte blocks: {e}"));
        d.wait_for_log("upload stored", std::time::Duration::from_secs(5));
        assert_eq!(
            std::fs::read(d.root().join("up.bin")).expect("stored"),
            content,
            "{filter}"
        );
    }
}
