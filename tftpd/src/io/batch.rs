//! The datagrams one turn of a transfer sends (a window of DATA, or one ACK), gathered in one
//! contiguous buffer so a fast path can hand them to the kernel in one call.

/// Datagrams laid end to end.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    lens: Vec<usize>,
}

/// A run of datagrams that one UDP GSO send can carry: all `segment` bytes long except
/// possibly the last, which may be shorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Byte range in the batch buffer.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
    /// The segment size.
    pub segment: usize,
    /// How many datagrams.
    pub count: usize,
}

impl Batch {
    /// Appends a datagram.
    pub fn push(&mut self, datagram: &[u8]) {
        self.buf.extend_from_slice(datagram);
        self.lens.push(datagram.len());
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lens.clear();
    }

    /// Empties the batch and hands out its buffer, taking `fresh` in its place: a buffer
    /// lent to the kernel (MSG_ZEROCOPY) must not be written again until it is returned.
    pub fn swap_buffer(&mut self, fresh: Vec<u8>) -> Vec<u8> {
        self.lens.clear();
        std::mem::replace(&mut self.buf, fresh)
    }

    /// How many datagrams.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The whole buffer.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Each datagram.
    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = 0;
        self.lens.iter().map(move |&n| {
            let d = &self.buf[at..at + n];
            at += n;
            d
        })
    }

    /// Splits the batch into GSO runs: consecutive datagrams of one size (the last of a run
    /// may be shorter, as a file's final block is), at most `max_segments` of them and at
    /// most `max_bytes` in all. A datagram longer than the one before starts a new run.
    pub fn runs(&self, max_segments: usize, max_bytes: usize) -> Runs<'_> {
        Runs {
            lens: &self.lens,
            next: 0,
            at: 0,
            max_segments,
            max_bytes,
        }
    }
}

/// The GSO runs of a batch, in order (see [`Batch::runs`]); computed as they are taken, so a
/// send allocates nothing.
#[derive(Debug)]
pub struct Runs<'a> {
    lens: &'a [usize],
    /// The first datagram not yet in a run.
    next: usize,
    /// Where it starts in the buffer.
    at: usize,
    max_segments: usize,
    max_bytes: usize,
}

impl Iterator for Runs<'_> {
    type Item = Run;

    fn next(&mut self) -> Option<Run> {
        let &first = self.lens.get(self.next)?;
        let mut run = Run {
            start: self.at,
            end: self.at + first,
            segment: first,
            count: 1,
        };
        self.next += 1;
        while let Some(&n) = self.lens.get(self.next) {
            let all_full = run.end - run.start == run.segment * run.count;
            let fits = all_full
                && n <= run.segment
                && run.count < self.max_segments
                && run.end - run.start + n <= self.max_bytes;
            if !fits {
                break;
            }
            run.end += n;
            run.count += 1;
            self.next += 1;
        }
        self.at = run.end;
        Some(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(lens: &[usize]) -> Batch {
        let mut b = Batch::default();
        for (i, &n) in lens.iter().enumerate() {
            b.push(&vec![i as u8; n]);
        }
        b
    }

    fn shape(runs: Runs<'_>) -> Vec<(usize, usize)> {
        runs.map(|r| (r.segment, r.count)).collect()
    }

    #[test]
    fn a_window_with_a_short_last_block_is_one_run() {
        let b = batch(&[516, 516, 516, 100]);
        assert_eq!(shape(b.runs(64, 65507)), [(516, 4)]);
        assert_eq!(
            b.runs(64, 65507).next().map(|r| r.end),
            Some(b.bytes().len())
        );
    }

    #[test]
    fn runs_split_at_size_changes_and_limits() {
        assert_eq!(
            shape(batch(&[4, 516, 516]).runs(64, 65507)),
            [(4, 1), (516, 2)]
        );
        assert_eq!(
            shape(batch(&[516, 100, 516]).runs(64, 65507)),
            [(516, 2), (516, 1)],
            "nothing may follow a short datagram in a run"
        );
        assert_eq!(
            shape(batch(&[10; 5]).runs(2, 65507)),
            [(10, 2), (10, 2), (10, 1)]
        );
        assert_eq!(
            shape(batch(&[1000; 5]).runs(64, 2500)),
            [(1000, 2), (1000, 2), (1000, 1)]
        );
    }

    #[test]
    fn datagrams_come_back_as_pushed() {
        let b = batch(&[3, 0, 5]);
        let got: Vec<Vec<u8>> = b.datagrams().map(<[u8]>::to_vec).collect();
        assert_eq!(got, [vec![0u8; 3], vec![], vec![2u8; 5]]);
        assert_eq!(b.len(), 3);
    }
}
