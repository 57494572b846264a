//! Log queue tests: whole lines in order and batched, a sink nobody reads, stop and flush.

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
fn lines_go_straight_to_the_sink_until_the_writer_starts_then_arrive_whole_in_order_and_batched() {
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
