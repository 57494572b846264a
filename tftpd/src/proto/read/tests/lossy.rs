//! Whole downloads over impaired simulated links (loss, duplication, reordering): exact
//! bytes or a clean end.

use proptest::prelude::*;

use super::*;

#[test]
fn windowed_download_survives_a_lossy_link() {
    let imp = Impairment {
        loss: 0.1,
        dup: 0.05,
        reorder: 0.05,
    };
    let mut cfg = config(64, 8, true);
    cfg.max_retries = 50;
    let file = pattern(64 * 500 + 17);
    let (server, client) = run_download(cfg, &file, imp, 3);
    assert_eq!(server.outcome(), Some(&Outcome::Completed));
    assert!(client.received == file, "bytes must match despite loss");
    assert!(
        server.stats().retransmits > 0,
        "loss must have caused retransmits"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_impaired_download_delivers_exact_bytes_or_ends_cleanly(
        len in 0usize..3000,
        blksize in prop_oneof![Just(8u16), Just(16), Just(512)],
        windowsize in 1u16..6,
        oack in any::<bool>(),
        loss in 0.0f64..0.3,
        dup in 0.0f64..0.2,
        reorder in 0.0f64..0.2,
        seed in any::<u64>(),
    ) {
        let mut cfg = config(blksize, windowsize, oack);
        cfg.max_retries = 8;
        let file = pattern(len);
        let (server, client) = run_download(cfg, &file, Impairment { loss, dup, reorder }, seed);
        let outcome = server.outcome().cloned();
        prop_assert!(outcome.is_some(), "the transfer must end");
        // Whatever happened, the client never holds a wrong byte.
        prop_assert!(file.starts_with(&client.received), "received bytes are a prefix");
        match outcome {
            Some(Outcome::Completed) => prop_assert!(client.received == file, "completed means every byte"),
            // Every datagram of the start lost: the client never answered, as far as the
            // server knows.
            Some(Outcome::Unanswered) => prop_assert!(!server.is_confirmed() && server.stats().bytes == 0),
            o => prop_assert_eq!(o, Some(Outcome::TimedOut)),
        }
    }
}

#[test]
fn lockstep_clients_download_exactly_through_a_default_window_on_bad_links() {
    use crate::proto::sim::run_download_as;
    let file = pattern(200 * 512 + 17);
    let clean = run_download_as(sliding(512, 8), 1, &file, Impairment::default(), 3);
    assert_eq!(clean.0.outcome(), Some(&Outcome::Completed));
    assert_eq!(clean.1.received, file);
    assert_eq!(clean.0.stats().retransmits, 0, "no loss, no resends");
    assert_eq!(clean.1.data_seen, 201, "every block exactly once");
    for seed in 0..40 {
        let imp = Impairment {
            loss: 0.05,
            dup: 0.05,
            reorder: 0.05,
        };
        let (server, client) = run_download_as(sliding(512, 8), 1, &file, imp, seed);
        assert_eq!(client.received, file, "seed {seed}: bytes must match");
        // The simulated client does not dally: when its final ACK is lost the server can
        // only time out, in every window mode alike.
        let final_ack_lost = client.done && server.outcome() == Some(&Outcome::TimedOut);
        assert!(
            server.outcome() == Some(&Outcome::Completed) || final_ack_lost,
            "seed {seed}: {:?}",
            server.outcome()
        );
    }
}
