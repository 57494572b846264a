//! (c) Single-port blind ACKs: with `single_port = true` the server's port is known, so a
//! spoofer who never sees a DATA can still drive a transfer to its victim: an RRQ in the
//! victim's name asking for big blocks and a big window, then the ACKs it can predict (0,
//! then one per window), paced. The victim only counts what it is sent.

use std::time::Duration;

use super::daemon::{Daemon, Target, Workdir};
use super::sources::{Sources, Tally};
use super::table::{Row, times};
use super::wire::{Ledger, ack, amplification, rrq};

/// 127.103.0.0/16.
const BLOCK: u8 = 103;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) file: &'static str,
    pub(crate) size: usize,
    pub(crate) blksize: u16,
    pub(crate) windowsize: u16,
    /// The window the spoofer assumes when it predicts ACKs: the one it asked for, or the
    /// server's single-port cap if it knows it (`protocol.single_port_max_windowsize`).
    pub(crate) assumed_window: u16,
    /// At most this many ACKs (`usize::MAX`: as many as cover the file).
    pub(crate) max_acks: usize,
    /// Time between spoofed ACKs.
    pub(crate) pace: Duration,
    /// How long the victim keeps counting after the last ACK.
    pub(crate) settle: Duration,
}

impl Plan {
    pub(crate) const FULL: Self = Self {
        file: "4M.bin",
        size: 4 * 1024 * 1024,
        blksize: 1428,
        windowsize: 64,
        assumed_window: 64,
        max_acks: usize::MAX,
        pace: Duration::from_millis(20),
        settle: Duration::from_millis(1500),
    };

    /// The same, by a spoofer who knows the server answers windowsize 4 in single-port mode
    /// and ACKs every fourth block.
    pub(crate) const KNOWS_THE_CAP: Self = Self {
        assumed_window: 4,
        ..Self::FULL
    };

    /// [`Self::KNOWS_THE_CAP`], cut to 100 ACKs (2 s) for the tests.
    pub(crate) const KNOWS_THE_CAP_QUICK: Self = Self {
        max_acks: 100,
        ..Self::KNOWS_THE_CAP
    };

    /// ACK numbers that cover the file: 0 (the OACK), then every window's last block.
    fn acks(&self) -> impl Iterator<Item = u16> {
        let blocks = self.size / usize::from(self.blksize) + 1;
        let windows = blocks.div_ceil(usize::from(self.assumed_window));
        let w = self.assumed_window;
        (0..=windows as u16).map(move |k| k * w).take(self.max_acks)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) plan: Plan,
    pub(crate) sent: Ledger,
    pub(crate) received: Tally,
}

impl Outcome {
    pub(crate) fn ratio(&self) -> Option<f64> {
        amplification(self.sent, self.received.all)
    }
}

pub(crate) fn run(target: &Target, plan: Plan) -> anyhow::Result<Outcome> {
    let dir = Workdir::new()?;
    let d = Daemon::start(target, &dir, "single_port = true")?;
    let mut victim = Sources::bind(BLOCK, 1)?;
    victim.set_recv_buffer(4 << 20);
    let (b, w) = (plan.blksize.to_string(), plan.windowsize.to_string());
    victim.send(
        0,
        &rrq(plan.file, &[("blksize", &b), ("windowsize", &w)]),
        d.addr(),
    )?;
    for n in plan.acks() {
        // Paced blind: the spoofer sees nothing, it only keeps time.
        victim.drain_until(plan.pace, plan.pace / 4, |_| false);
        victim.send(0, &ack(n), d.addr())?;
    }
    victim.drain_until(plan.settle, Duration::from_millis(20), |_| false);
    Ok(Outcome {
        plan,
        sent: victim.sent(),
        received: victim.total(),
    })
}

impl Outcome {
    pub(crate) fn row(&self) -> Row {
        let p = &self.plan;
        Row {
            attack: if p.assumed_window == p.windowsize {
                "c. single-port blind ACKs".into()
            } else {
                "i. single-port blind ACKs, window cap known".into()
            },
            sent: format!(
                "with single_port = true: RRQ for {} (blksize {}, windowsize {}) and {} ACKs \
                 (0, {}, {}, …) every {} ms, {} B at IP level, in a victim's name",
                p.file,
                p.blksize,
                p.windowsize,
                self.sent.datagrams - 1,
                p.assumed_window,
                2 * p.assumed_window,
                p.pace.as_millis(),
                self.sent.ip_bytes()
            ),
            server: format!(
                "sent the victim {}: {} B of a {} B file",
                self.received.kinds(),
                self.received.all.bytes,
                p.size
            ),
            legit: "n/a".into(),
            ratio: times(self.ratio()),
        }
    }
}
