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
mod tests {
    use std::io::Read;
    use std::sync::mpsc;

    use super::*;

    /// Upper bound on waits for things that must happen; never a speed limit.
    const LIVENESS: Duration = Duration::from_secs(60);

    /// A sink that counts its `write` calls, in front of a real pipe.
    struct Counting {
        pipe: io::PipeWriter,
        calls: Arc<AtomicU64>,
    }

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls.fetch_add(1, Relaxed);
            self.pipe.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(thread: usize, n: usize) -> Vec<u8> {
        format!("thread {thread} line {n:05} {}\n", "x".repeat(40)).into_bytes()
    }

    /// Runs `f` on a thread and fails the test if it has not returned within [`LIVENESS`].
    fn returns<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(LIVENESS)
            .unwrap_or_else(|_| panic!("{what} did not return"))
    }

    #[test]
    fn lines_go_straight_to_the_sink_until_the_writer_starts_then_arrive_whole_in_order_and_batched()
     {
        let (mut reader, writer) = io::pipe().expect("pipe");
        let calls = Arc::new(AtomicU64::new(0));
        let queue = LineQueue::new(
            Box::new(Counting {
                pipe: writer,
                calls: Arc::clone(&calls),
            }),
            CAPACITY,
        );
        // Direct: written before push returns, by the caller.
        queue.push(b"before the writer\n");
        let mut first = vec![0; 18];
        reader.read_exact(&mut first).expect("direct line");
        assert_eq!(first, b"before the writer\n");
        assert_eq!(calls.load(Relaxed), 1);

        let guard = queue.start().expect("writer thread");
        let threads = 4;
        let per_thread = 2000;
        let expected: usize = (0..threads)
            .map(|t| (0..per_thread).map(|n| line(t, n).len()).sum::<usize>())
            .sum();
        // Read concurrently: the pipe holds less than all the lines.
        let reading = std::thread::spawn(move || {
            let mut got = vec![0; expected];
            reader.read_exact(&mut got).map(|()| got)
        });
        let pushers: Vec<_> = (0..threads)
            .map(|t| {
                let q = Arc::clone(&queue);
                std::thread::spawn(move || {
                    for n in 0..per_thread {
                        QueuedLine(&q).write_all(&line(t, n)).expect("push");
                    }
                })
            })
            .collect();
        for p in pushers {
            p.join().expect("pusher");
        }
        drop(guard);
        let got = reading.join().expect("reader").expect("every line written");
        let text = String::from_utf8(got).expect("whole lines");
        for t in 0..threads {
            let numbers: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|rest| rest[..5].parse().expect("line number"))
                .collect();
            assert_eq!(
                numbers,
                (0..per_thread).collect::<Vec<_>>(),
                "thread {t}'s lines, whole and in order"
            );
        }
        let writes = calls.load(Relaxed) - 1;
        assert!(
            writes < (threads * per_thread) as u64,
            "{} lines in {writes} writes: the writer batches",
            threads * per_thread
        );
        assert_eq!(queue.dropped_total(), 0);
    }

    #[test]
    fn a_sink_nobody_reads_never_blocks_a_logger_and_what_does_not_fit_is_counted() {
        let (mut reader, writer) = io::pipe().expect("pipe");
        let capacity = 64 << 10;
        let queue = LineQueue::new(Box::new(writer), capacity);
        let guard = queue.start().expect("writer thread");
        // Far more than the pipe (64 KiB) and the queue together.
        let lines = 100_000;
        let q = Arc::clone(&queue);
        returns("logging into a stalled sink", move || {
            for n in 0..lines {
                q.push(&line(0, n % 100_000));
            }
        });
        let dropped = queue.dropped_total();
        assert!(dropped > 0, "nothing dropped although nothing was read");
        assert!(dropped < lines as u64, "the queue kept nothing");
        // Once someone reads, what was kept comes out whole.
        let reading = std::thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).map(|_| all)
        });
        returns("stopping after the reader drained the pipe", move || {
            drop(guard)
        });
        drop(queue);
        let all = returns("reading to the end", move || {
            reading.join().expect("reader").expect("read")
        });
        let text = String::from_utf8(all).expect("whole lines");
        let kept = text.lines().count() as u64;
        assert!(
            text.lines().all(|l| l.starts_with("thread 0 line ")),
            "only whole lines"
        );
        assert_eq!(
            kept + dropped,
            lines as u64,
            "every line written or counted"
        );
    }

    #[test]
    fn stopping_gives_up_on_a_sink_nobody_reads() {
        let (reader, writer) = io::pipe().expect("pipe");
        let queue = LineQueue::new(Box::new(writer), CAPACITY);
        let guard = queue.start().expect("writer thread");
        for n in 0..10_000 {
            queue.push(&line(0, n));
        }
        // The writer is stuck in a write the pipe cannot take; the daemon must still exit.
        returns("stopping with a stalled sink", move || drop(guard));
        // Lines after the give-up are written directly (and would block here): the state says
        // so without writing one.
        assert_eq!(lock(&queue.state).writer, Writer::Direct);
        drop(reader);
    }

    #[test]
    fn a_flush_writes_what_is_queued_before_returning() {
        let (mut reader, writer) = io::pipe().expect("pipe");
        let queue = LineQueue::new(Box::new(writer), CAPACITY);
        let _guard = queue.start().expect("writer thread");
        queue.push(b"queued line\n");
        queue.flush_now();
        // Whether the writer or the flush wrote it, it is in the pipe now, once.
        let mut got = vec![0; 12];
        reader.read_exact(&mut got).expect("line");
        assert_eq!(got, b"queued line\n");
    }
}
