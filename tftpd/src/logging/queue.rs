//! Log lines handed to a writer thread, so a transfer never waits on stderr.
//!
//! Writing each line to stderr costs a transfer a `write(2)` (two per transfer: started and
//! finished), and a stderr that is not read (a full pipe, a stalled journald) would stop every
//! transfer whose task logs. Here a line is appended to a bounded buffer under a mutex; one
//! thread writes the buffer out, waking at most once per [`LINGER`], so a burst of lines costs
//! one `write(2)` per linger instead of one per line. When the buffer is full the line is
//! dropped and counted (a warning says how many once the writer catches up): the daemon keeps
//! serving, which is what the log describes.
//!
//! Until [`LineQueue::start`] is called lines are written directly, in the caller: the daemon
//! starts the thread only after it has dropped privileges, so no thread ever runs with them.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long the writer waits after the first line of a batch before writing it out: the bound
/// on how late a line reaches stderr, and on how often the writer wakes in a burst.
pub(crate) const LINGER: Duration = Duration::from_millis(2);

/// Lines waiting beyond this many bytes are dropped (and counted) instead of queued.
pub(crate) const CAPACITY: usize = 4 << 20;

/// How long shutting down waits for queued lines to be written before giving up on a stderr
/// that is not read.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Where the writer is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Writer {
    /// No thread: lines are written by the caller.
    Direct,
    /// Waiting for a line; the next line wakes it.
    Idle,
    /// Woken or writing: lines are only appended.
    Busy,
    /// Asked to write what is queued and end.
    Stopping,
}

struct State {
    lines: Vec<u8>,
    /// Lines dropped since the last notice.
    dropped: u64,
    writer: Writer,
}

/// The queue between the threads that log and the one that writes.
pub(crate) struct LineQueue {
    state: Mutex<State>,
    /// Wakes the writer.
    wake: Condvar,
    /// Tells the shutdown that the writer ended.
    ended: Condvar,
    /// The output. Locked only to write, so a flush from a panic waits for a write in progress
    /// and lines stay in order.
    sink: Mutex<Box<dyn Write + Send>>,
    /// Lines dropped since start, for the metrics.
    dropped_total: AtomicU64,
    capacity: usize,
}

impl LineQueue {
    /// A queue writing to `sink`, direct until [`start`](Self::start).
    pub(crate) fn new(sink: Box<dyn Write + Send>, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                lines: Vec::new(),
                dropped: 0,
                writer: Writer::Direct,
            }),
            wake: Condvar::new(),
            ended: Condvar::new(),
            sink: Mutex::new(sink),
            dropped_total: AtomicU64::new(0),
            capacity,
        })
    }

    /// Starts the writer thread; from now on lines are queued. The thread ends (after writing
    /// what is queued) when the returned guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> io::Result<WriterGuard> {
        let queue = Arc::clone(self);
        lock(&self.state).writer = Writer::Busy;
        let spawned = std::thread::Builder::new()
            .name("tftpd-log".into())
            .spawn(move || queue.run());
        if let Err(e) = spawned {
            lock(&self.state).writer = Writer::Direct;
            return Err(e);
        }
        Ok(WriterGuard {
            queue: Arc::clone(self),
        })
    }

    /// Lines dropped because the queue was full, since start.
    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Relaxed)
    }

    /// Queues one line (or writes it, before the thread runs). Never blocks on the sink once
    /// the thread runs.
    pub(crate) fn push(&self, line: &[u8]) {
        let mut st = lock(&self.state);
        match st.writer {
            Writer::Direct => {
                // Under the state lock, so a line written here cannot overtake one the
                // stopping writer has not written yet.
                let _ = lock(&self.sink).write_all(line);
            }
            Writer::Idle | Writer::Busy | Writer::Stopping => {
                if st.lines.len() + line.len() > self.capacity {
                    st.dropped += 1;
                    self.dropped_total.fetch_add(1, Relaxed);
                } else {
                    st.lines.extend_from_slice(line);
                    if st.writer == Writer::Idle {
                        st.writer = Writer::Busy;
                        self.wake.notify_one();
                    }
                }
            }
        }
    }

    /// Writes out what is queued now, in the caller (a panic is about to print to stderr
    /// directly: the lines before it should come first).
    pub(crate) fn flush_now(&self) {
        let lines = std::mem::take(&mut lock(&self.state).lines);
        if !lines.is_empty() {
            let _ = lock(&self.sink).write_all(&lines);
        }
    }

    fn run(&self) {
        let mut out = Vec::new();
        loop {
            let mut st = lock(&self.state);
            if st.writer == Writer::Direct {
                // A shutdown gave up waiting while this thread was stuck in a write.
                return;
            }
            while st.lines.is_empty() && st.dropped == 0 && st.writer != Writer::Stopping {
                st.writer = Writer::Idle;
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.writer != Writer::Stopping {
                // Let the rest of a burst arrive: they are appended without waking anyone.
                drop(st);
                std::thread::sleep(LINGER);
                st = lock(&self.state);
            }
            std::mem::swap(&mut st.lines, &mut out);
            let dropped = std::mem::take(&mut st.dropped);
            let stopping = st.writer == Writer::Stopping;
            let mut sink = lock(&self.sink);
            drop(st);
            // A stderr that is gone (closed, EPIPE) has nowhere else to go; the lines are lost
            // either way, and the daemon keeps serving.
            let _ = sink.write_all(&out);
            drop(sink);
            out.clear();
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "log lines dropped: stderr was not read as fast as they were written"
                );
            }
            if stopping {
                let mut st = lock(&self.state);
                if st.lines.is_empty() {
                    st.writer = Writer::Direct;
                    self.ended.notify_all();
                    return;
                }
            }
        }
    }

    /// Asks the writer to write what is queued and end; waits up to [`SHUTDOWN_WAIT`].
    fn stop(&self) {
        let mut st = lock(&self.state);
        if st.writer == Writer::Direct {
            return;
        }
        st.writer = Writer::Stopping;
        self.wake.notify_one();
        let (mut st, timeout) = self
            .ended
            .wait_timeout_while(st, SHUTDOWN_WAIT, |s| s.writer != Writer::Direct)
            .unwrap_or_else(|e| e.into_inner());
        if timeout.timed_out() {
            // The sink is stuck (nobody reads stderr): leave the thread blocked there and
            // let the caller go on; what is still queued is lost with the process.
            st.writer = Writer::Direct;
            st.lines.clear();
        }
    }
}

/// Ends the writer thread when dropped, after it has written every queued line (or after
/// a bounded wait when stderr is not read).
pub struct WriterGuard {
    queue: Arc<LineQueue>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.queue.stop();
    }
}

impl std::fmt::Debug for WriterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterGuard")
    }
}

/// A poisoned lock means a thread panicked while logging; the buffer is still bytes.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `io::Write` the formatter writes one whole line to.
pub(crate) struct QueuedLine<'a>(pub(crate) &'a LineQueue);

impl Write for QueuedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
