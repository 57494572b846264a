//! The noisy-link summary (issue #22): per lossy or delayed row, how long tftpd took
//! against the best peer and against its own fixed timer, and how many DATA each resent
//! although the client's ACK had got through.

use std::fmt::Write as _;

use super::server::Server;
use super::table::{ScenarioResult, Summary, best_peer, num, ratio};

/// One line per scenario that has both tftpd and tftpd-fixed rows and a spurious count;
/// empty when none has.
pub(super) fn noisy_table(results: &[ScenarioResult]) -> String {
    let mut out = String::from(
        "| scenario | tftpd s | tftpd-fixed s | best peer s | tftpd ÷ best peer (time) | tftpd ÷ tftpd-fixed (time) | spurious /1000 blocks: tftpd, tftpd-fixed, best peer | failed: tftpd, tftpd-fixed |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut any = false;
    for r in results {
        let find = |s: Server| r.rows.iter().find(|row| row.server == s.name());
        let (Some(ours), Some(fixed)) = (find(Server::Tftpd), find(Server::TftpdFixed)) else {
            continue;
        };
        any = true;
        let best_secs = best_peer(&r.rows, |s| s.secs, false);
        let best: Option<&Summary> = r
            .rows
            .iter()
            .find(|s| !Server::is_ours(s.server) && s.secs == best_secs && best_secs.is_some());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {} | {} | {}, {}, {} | {} / {}, {} / {} |",
            r.id,
            num(ours.secs),
            num(fixed.secs),
            num(best_secs),
            best.map_or("n/a", |b| b.server),
            ratio(ours.secs, best_secs),
            ratio(ours.secs, fixed.secs),
            num(ours.spurious_per_1000),
            num(fixed.spurious_per_1000),
            num(best.and_then(|b| b.spurious_per_1000)),
            ours.failed,
            ours.transfers,
            fixed.failed,
            fixed.transfers,
        );
    }
    if any { out } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::super::table::tests::row;
    use super::*;

    #[test]
    fn tftpd_is_set_against_the_fastest_peer_and_its_fixed_timer() {
        let mut ours = row(Server::Tftpd, 1.0, "1428/1");
        ours.secs = Some(2.0);
        ours.spurious_per_1000 = Some(3.0);
        let mut fixed = row(Server::TftpdFixed, 1.0, "1428/1");
        fixed.secs = Some(16.0);
        let mut hpa = row(Server::TftpHpa, 1.0, "1428/1");
        hpa.secs = Some(12.0);
        let mut atftpd = row(Server::Atftpd, 1.0, "1428/1");
        atftpd.secs = Some(10.0);
        let table = noisy_table(&[ScenarioResult {
            id: "5e",
            title: "t".into(),
            rows: vec![ours.clone(), fixed, hpa, atftpd],
            ceiling_mb_per_s: None,
        }]);
        assert!(
            table.contains(
                "| 5e | 2.00 | 16.0 | 10.0 (atftpd) | 0.20× | 0.12× | 3.00, 0.000, 0.000 | 0 / 1, 0 / 1 |"
            ),
            "{table}"
        );
        let without_fixed = noisy_table(&[ScenarioResult {
            id: "1a",
            title: "t".into(),
            rows: vec![ours],
            ceiling_mb_per_s: None,
        }]);
        assert!(without_fixed.is_empty());
    }
}
