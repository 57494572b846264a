//! Transfer threads (`performance.cpu.transfer_threads`): up to that many transfers at once
//! each run on a thread of their own with a blocking socket, the rest on the async runtime.
//!
//! A lock-step block is one round trip, and on the async runtime each costs an `epoll_wait`,
//! the `recvfrom`, a `recvfrom` that finds nothing (EAGAIN), the `sendto` and, when the
//! readiness event wakes another worker, a `futex` or eventfd `write`: about 6 syscalls a
//! block. A blocking thread makes 2 (`recvfrom`, `sendto`) and sleeps in the kernel between
//! them. Threads are few and bounded because they cost a stack each and do not batch; the
//! async runtime carries a storm (docs/adr/0023).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many transfers run on threads of their own now.
#[derive(Debug, Default)]
pub struct TransferThreads {
    running: Arc<AtomicUsize>,
}

/// A transfer's claim on a thread; dropping it frees the place.
#[derive(Debug)]
pub struct ThreadPlace {
    running: Arc<AtomicUsize>,
}

impl TransferThreads {
    /// Claims a place when fewer than `max` transfers hold one (`max` 0: never).
    pub fn claim(&self, max: usize) -> Option<ThreadPlace> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ThreadPlace {
                running: self.running.clone(),
            })
    }

    /// How many places are held.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }
}

impl Drop for ThreadPlace {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_come_back_when_dropped() {
        let t = TransferThreads::default();
        assert!(t.claim(0).is_none(), "0 means no transfer threads");
        let a = t.claim(2).expect("first place");
        let b = t.claim(2).expect("second place");
        assert!(t.claim(2).is_none(), "a third transfer runs async");
        assert_eq!(t.running(), 2);
        drop(a);
        assert_eq!(t.running(), 1, "a finished transfer frees its place");
        let _c = t.claim(2).expect("the freed place");
        assert!(
            t.claim(3).is_some(),
            "a raised limit (reload) applies at once"
        );
        drop(b);
    }
}
