//! What a transfer waits for besides a datagram: its retransmit deadline and the drain's
//! abort signal, each kept from one wait to the next.
//!
//! A lock-step transfer waits once per block and its deadline moves forward every time. A
//! fresh `Sleep` per wait costs a timer-wheel removal and insertion per block, and an
//! insertion wakes the runtime's driver (an eventfd `write`) whenever the driver has no
//! earlier timer; a fresh `cancelled()` future likewise registers with the token on every
//! wait. Here the timer moves only when the deadline comes *earlier*. When it fires before
//! the deadline (the deadline moved on since it was set) it is set again then, so a
//! transfer whose deadline moves forward every block updates its timer about once per
//! retransmit timeout instead of once per block.
//!
//! The abort signal is registered once, not checked per wait. Every check of a
//! `CancellationToken` locks its node's mutex, and polling its `cancelled()` future checks
//! again and locks the token's `Notify` list: three locks of one shared cache line per
//! block, taken by every transfer on every worker (2 % of the daemon's samples in a
//! 1000-client storm). So the drain raises a flag before it cancels the token
//! ([`AbortSignal`]), and a transfer polls the token's `cancelled()` future once, which
//! registers its task's waker; a later wait reads the flag (a line nobody writes until the
//! drain) and polls the future again only once the flag is up or the task's waker is a new
//! one.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::time::Sleep;
use tokio_util::sync::{
    CancellationToken, WaitForCancellationFuture, WaitForCancellationFutureOwned,
};

/// The drain's order to end every transfer now: a token to wait on, and a flag that says
/// so without taking a lock. A transfer's own signal ([`AbortSignal::for_transfer`]) is
/// raised by the drain too, or alone by its [`Evictor`].
#[derive(Debug, Clone, Default)]
pub struct AbortSignal {
    token: CancellationToken,
    raised: Arc<AtomicBool>,
    /// The transfer's own flag, raised by its evictor only.
    own: Option<Arc<AtomicBool>>,
}

/// Ends one transfer through its own [`AbortSignal`]: the half-open pool evicts with it.
#[derive(Debug, Clone)]
pub struct Evictor {
    token: CancellationToken,
    raised: Arc<AtomicBool>,
}

impl Evictor {
    /// Raises the transfer's flag, then wakes its wait.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// True once [`raise`](Self::raise) has been called.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }
}

impl AbortSignal {
    /// A signal not raised yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag, then wakes everything waiting on the token.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// A signal for one transfer, raised with this one (the drain's) or alone by the
    /// returned evictor. Its token is a child of this one's, so a blocking wait that checks
    /// the token now and then sees either.
    pub fn for_transfer(&self) -> (Self, Evictor) {
        let own = Arc::new(AtomicBool::new(false));
        let token = self.token.child_token();
        let evictor = Evictor {
            token: token.clone(),
            raised: own.clone(),
        };
        let signal = Self {
            token,
            raised: self.raised.clone(),
            own: Some(own),
        };
        (signal, evictor)
    }

    /// True once [`raise`](Self::raise) has been called, or this transfer's evictor raised.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
            || self.own.as_ref().is_some_and(|o| o.load(Ordering::Acquire))
    }

    /// Completes once the signal is raised.
    pub fn raised(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// The token behind the signal, for waits that check it now and then.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// How a wait on [`Alarms`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rang {
    /// The deadline passed.
    Deadline,
    /// The drain's abort signal came.
    Abort,
}

/// A transfer's deadline timer and abort signal (see the module doc).
#[derive(Debug)]
pub struct Alarms {
    abort: AbortSignal,
    /// Made on the first timed wait (a transfer on a thread of its own never needs one).
    timer: Option<Pin<Box<Sleep>>>,
    /// When `timer` fires (None: not set since it fired, or never).
    armed: Option<Instant>,
    /// Made on the first async wait.
    watch: Option<AbortWatch>,
}

/// The token's `cancelled()` future, and the task waker it last registered.
#[derive(Debug)]
struct AbortWatch {
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    registered: Option<Waker>,
}

impl Alarms {
    /// Alarms for a transfer that the drain ends through `abort`.
    pub fn new(abort: &AbortSignal) -> Self {
        Self {
            abort: abort.clone(),
            timer: None,
            armed: None,
            watch: None,
        }
    }

    /// The drain's abort token.
    pub fn abort(&self) -> &CancellationToken {
        self.abort.token()
    }

    /// Waits until `deadline` (none: no limit) or the abort signal, whichever comes first.
    /// Must be called inside the async runtime.
    pub async fn ring(&mut self, deadline: Option<Instant>) -> Rang {
        let (abort, watch) = (&self.abort, &mut self.watch);
        let aborted = std::future::poll_fn(|cx| poll_abort(abort, watch, cx));
        tokio::select! {
            () = aborted => Rang::Abort,
            () = until(&mut self.timer, &mut self.armed, deadline) => Rang::Deadline,
        }
    }
}

/// Ready once `abort` is raised. While it is not, and the task's waker is the one the
/// token's future holds, nothing but the flag is read.
fn poll_abort(
    abort: &AbortSignal,
    watch: &mut Option<AbortWatch>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let w = watch.get_or_insert_with(|| AbortWatch {
        cancelled: Box::pin(abort.token().clone().cancelled_owned()),
        registered: None,
    });
    let current = w
        .registered
        .as_ref()
        .is_some_and(|r| r.will_wake(cx.waker()));
    if current && !abort.is_raised() {
        return Poll::Pending;
    }
    let polled = w.cancelled.as_mut().poll(cx);
    w.registered = polled.is_pending().then(|| cx.waker().clone());
    polled
}

/// Completes at `deadline` (never when `None`), moving `timer` only when it is set to fire
/// later than `deadline` or has fired before it.
async fn until(
    timer: &mut Option<Pin<Box<Sleep>>>,
    armed: &mut Option<Instant>,
    deadline: Option<Instant>,
) {
    let Some(deadline) = deadline else {
        return std::future::pending().await;
    };
    loop {
        let at = tokio::time::Instant::from_std(deadline);
        let t = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if armed.is_none_or(|a| a > deadline) {
            t.as_mut().reset(at);
            *armed = Some(deadline);
        }
        t.as_mut().await;
        // It fired at `armed`: that is the deadline, or an earlier one the deadline has
        // moved on from, in which case the timer is set again to the deadline.
        // The runtime's clock, which its timers follow (and tests can pause).
        if *armed == Some(deadline) || tokio::time::Instant::now().into_std() >= deadline {
            return;
        }
        *armed = None;
    }
}

/// Sleeps until `deadline`; forever when there is none (a `select!` arm that never fires).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_evictor_ends_its_own_transfers_wait_and_no_other() {
        let drain = AbortSignal::new();
        let (mine, evictor) = drain.for_transfer();
        let (other, _keep) = drain.for_transfer();
        let mut alarms = Alarms::new(&mine);
        let mut others = Alarms::new(&other);
        let far = now() + Duration::from_secs(60);
        let r = tokio::time::timeout(Duration::from_millis(5), alarms.ring(Some(far))).await;
        assert!(r.is_err(), "nothing raised yet");
        evictor.raise();
        assert_eq!(alarms.ring(Some(far)).await, Rang::Abort, "evicted");
        assert!(alarms.abort().is_cancelled(), "a blocking wait sees it too");
        let r = tokio::time::timeout(Duration::from_millis(5), others.ring(Some(far))).await;
        assert!(r.is_err(), "another transfer is not evicted with it");
        assert!(!drain.is_raised(), "the drain is not raised by an eviction");
        drain.raise();
        assert_eq!(
            others.ring(Some(far)).await,
            Rang::Abort,
            "the drain ends every transfer"
        );
    }

    /// The runtime's (paused) clock, which the timers follow.
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_is_kept_not_the_first_one() {
        let abort = AbortSignal::new();
        let mut alarms = Alarms::new(&abort);
        let start = now();
        // The first wait sets the timer; a datagram ends it early (modelled by a timeout).
        let first = start + Duration::from_millis(100);
        let r = tokio::time::timeout(Duration::from_millis(10), alarms.ring(Some(first))).await;
        assert!(r.is_err(), "the first deadline had not passed");
        // The next wait has a later deadline: it must not end at the first one.
        let later = start + Duration::from_millis(300);
        assert_eq!(alarms.ring(Some(later)).await, Rang::Deadline);
        assert!(
            now() >= later,
            "ended {:?} before the later deadline",
            later - now()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_earlier_ends_the_wait_then() {
        let abort = AbortSignal::new();
        let mut alarms = Alarms::new(&abort);
        let start = now();
        let r = tokio::time::timeout(
            Duration::from_millis(10),
            alarms.ring(Some(start + Duration::from_secs(5))),
        )
        .await;
        assert!(r.is_err(), "the first deadline had not passed");
        let earlier = start + Duration::from_millis(50);
        assert_eq!(alarms.ring(Some(earlier)).await, Rang::Deadline);
        let now = now();
        assert!(now >= earlier, "ended before the earlier deadline");
        assert!(
            now < start + Duration::from_secs(1),
            "waited for the old, later deadline: {:?}",
            now - start
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_ends_every_wait_on_it_at_once() {
        let abort = AbortSignal::new();
        let mut alarms = Alarms::new(&abort);
        let d = now() + Duration::from_millis(20);
        assert_eq!(alarms.ring(Some(d)).await, Rang::Deadline);
        let again = tokio::time::timeout(Duration::from_millis(1), alarms.ring(Some(d))).await;
        assert_eq!(again, Ok(Rang::Deadline), "the same passed deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn the_abort_signal_ends_a_wait_without_a_deadline_and_every_later_one() {
        let abort = AbortSignal::new();
        let mut alarms = Alarms::new(&abort);
        let signal = abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            signal.raise();
        });
        assert_eq!(alarms.ring(None).await, Rang::Abort);
        assert_eq!(alarms.ring(None).await, Rang::Abort, "still aborted");
        assert!(alarms.abort().is_cancelled());
    }
    #[tokio::test(start_paused = true)]
    async fn an_abort_ends_a_wait_long_after_the_signal_was_registered() {
        let abort = AbortSignal::new();
        let mut alarms = Alarms::new(&abort);
        // Waits that end by their deadline: only the first registers with the token.
        for _ in 0..5 {
            let d = now() + Duration::from_millis(10);
            assert_eq!(alarms.ring(Some(d)).await, Rang::Deadline);
        }
        let signal = abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            signal.raise();
        });
        let start = now();
        let r = tokio::time::timeout(Duration::from_secs(5), alarms.ring(None)).await;
        assert_eq!(r, Ok(Rang::Abort), "the registered waker was woken");
        assert!(
            now() - start < Duration::from_secs(1),
            "woken by the cancel"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn alarms_moved_to_another_task_are_woken_there() {
        let abort = AbortSignal::new();
        let mut alarms = Alarms::new(&abort);
        let d = now() + Duration::from_millis(10);
        assert_eq!(alarms.ring(Some(d)).await, Rang::Deadline);
        // Registered with this task's waker; the wait below runs in a task of its own,
        // which nothing would wake unless the signal is registered again there.
        let waiting = tokio::spawn(async move {
            let r = tokio::time::timeout(Duration::from_secs(5), alarms.ring(None)).await;
            (r, now())
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let cancelled_at = now();
        abort.raise();
        let (r, ended) = waiting.await.expect("join");
        assert_eq!(r, Ok(Rang::Abort));
        assert!(
            ended - cancelled_at < Duration::from_secs(1),
            "woken by the cancel, not found {:?} later",
            ended - cancelled_at
        );
    }
}
