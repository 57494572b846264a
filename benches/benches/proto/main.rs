//! Micro benches of tftpd's protocol core (`tftpd::proto`), which owns no socket, file or
//! clock, so each of these measures the core's own cost and nothing of the I/O shell.
//!
//! - `codec`: decoding and encoding each packet kind the server meets on a busy path.
//! - `options`: negotiating an RRQ's options into the transfer's values and its OACK.
//! - `netascii`: local text to netascii in DATA-sized blocks, and back.
//! - `transfer`: the read and write state machines through a whole transfer in memory.
//!
//! Each bench checks its result once before it is timed (a wrong answer fast is worth
//! nothing); the timed loops are then left alone. Run: `cargo bench -p tftpd-benches --bench
//! proto`, or one part with a filter, e.g. `-- netascii`.

mod codec;
mod netascii;
mod options;
mod transfer;

criterion::criterion_group!(
    benches,
    codec::bench,
    options::bench,
    netascii::bench,
    transfer::bench
);
criterion::criterion_main!(benches);
