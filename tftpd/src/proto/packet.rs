//! The TFTP packet codec (RFC 1350 §5, RFC 2347 §2 for OACK) over borrowed slices.
//!
//! Decoding never panics and never allocates more than the datagram's own option list;
//! every way a datagram can be wrong is a [`DecodeError`] variant. What a request *means*
//! (mode names, option values, file names) is judged later, in `options` and the server.

use super::error::ErrorCode;

/// Opcode of a read request.
pub const OP_RRQ: u16 = 1;
/// Opcode of a write request.
pub const OP_WRQ: u16 = 2;
/// Opcode of a data block.
pub const OP_DATA: u16 = 3;
/// Opcode of an acknowledgement.
pub const OP_ACK: u16 = 4;
/// Opcode of an error.
pub const OP_ERROR: u16 = 5;
/// Opcode of an option acknowledgement (RFC 2347).
pub const OP_OACK: u16 = 6;

/// Length of the DATA header: opcode and block number.
pub const DATA_HEADER_LEN: usize = 4;

/// A decoded datagram, borrowing from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A read request.
    Rrq(Request<'a>),
    /// A write request.
    Wrq(Request<'a>),
    /// A data block.
    Data {
        /// Wire block number.
        block: u16,
        /// The payload, 0 to blksize bytes.
        data: &'a [u8],
    },
    /// An acknowledgement.
    Ack {
        /// Wire block number acknowledged (0 acknowledges a WRQ or an OACK).
        block: u16,
    },
    /// An error; it ends the transfer it belongs to.
    Error {
        /// The error code.
        code: ErrorCode,
        /// The message, as sent (not necessarily UTF-8).
        message: &'a [u8],
    },
    /// An option acknowledgement.
    Oack {
        /// Option names and values, in the order sent.
        options: OptionList<'a>,
    },
}

/// RFC 2347 options as (name, value) pairs, without their NULs, in the order sent.
pub type OptionList<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The body of an RRQ or WRQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The file name, raw bytes without the terminating NUL.
    pub filename: &'a [u8],
    /// The transfer mode, raw bytes without the terminating NUL.
    pub mode: &'a [u8],
    /// RFC 2347 options, names and values without NULs, in the order sent.
    pub options: OptionList<'a>,
}

/// Why a datagram is not a TFTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the smallest packet of its kind.
    #[error("datagram of {len} bytes is too short")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// The opcode is not 1 to 6.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    /// A string field has no terminating NUL.
    #[error("the {field} field has no terminating NUL")]
    Unterminated {
        /// Which field: "filename", "mode", "option" or "error message".
        field: &'static str,
    },
    /// An option name came without a value.
    #[error("option without a value")]
    OptionWithoutValue,
    /// An ACK that is not exactly 4 bytes long.
    #[error("ACK of {len} bytes (must be 4)")]
    BadAckLength {
        /// The datagram's length.
        len: usize,
    },
}

impl DecodeError {
    /// A fixed, short label for logs and metric labels (a closed set).
    pub fn label(self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::UnknownOpcode(_) => "unknown_opcode",
            Self::Unterminated { .. } => "unterminated",
            Self::OptionWithoutValue => "option_without_value",
            Self::BadAckLength { .. } => "bad_ack_length",
        }
    }
}

/// Reads the opcode, if the datagram has one.
pub fn opcode(datagram: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*datagram.first()?, *datagram.get(1)?]))
}

impl<'a> Packet<'a> {
    /// Decodes one datagram.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let len = datagram.len();
        let op = opcode(datagram).ok_or(DecodeError::TooShort { len })?;
        let body = &datagram[2..];
        match op {
            OP_RRQ => Ok(Self::Rrq(decode_request(body)?)),
            OP_WRQ => Ok(Self::Wrq(decode_request(body)?)),
            OP_DATA => {
                let block = read_u16(body).ok_or(DecodeError::TooShort { len })?;
                Ok(Self::Data {
                    block,
                    data: &body[2..],
                })
            }
            OP_ACK => {
                if len != 4 {
                    return Err(DecodeError::BadAckLength { len });
                }
                let block = read_u16(body).ok_or(DecodeError::TooShort { len })?;
                Ok(Self::Ack { block })
            }
            OP_ERROR => {
                let code = read_u16(body).ok_or(DecodeError::TooShort { len })?;
                // Be lenient with a peer's ERROR: a missing NUL still ends the transfer,
                // which is what the peer asked for.
                let rest = &body[2..];
                let message = match rest.iter().position(|&b| b == 0) {
                    Some(end) => &rest[..end],
                    None => rest,
                };
                Ok(Self::Error {
                    code: ErrorCode::from_u16(code),
                    message,
                })
            }
            OP_OACK => Ok(Self::Oack {
                options: decode_options(body)?,
            }),
            other => Err(DecodeError::UnknownOpcode(other)),
        }
    }

    /// Appends the encoded packet to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Rrq(req) => encode_request(out, OP_RRQ, req),
            Self::Wrq(req) => encode_request(out, OP_WRQ, req),
            Self::Data { block, data } => {
                out.extend_from_slice(&data_header(*block));
                out.extend_from_slice(data);
            }
            Self::Ack { block } => out.extend_from_slice(&ack(*block)),
            Self::Error { code, message } => encode_error(out, *code, message),
            Self::Oack { options } => {
                out.extend_from_slice(&OP_OACK.to_be_bytes());
                for (name, value) in options {
                    push_cstr(out, name);
                    push_cstr(out, value);
                }
            }
        }
    }
}

/// The 4-byte header of DATA block `block`.
pub fn data_header(block: u16) -> [u8; DATA_HEADER_LEN] {
    let [a, b] = OP_DATA.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

/// An encoded ACK of `block`.
pub fn ack(block: u16) -> [u8; 4] {
    let [a, b] = OP_ACK.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

/// Appends an encoded ERROR packet. A NUL inside `message` would end it early on the wire,
/// so such bytes are left out.
pub fn encode_error(out: &mut Vec<u8>, code: ErrorCode, message: &[u8]) {
    out.extend_from_slice(&OP_ERROR.to_be_bytes());
    out.extend_from_slice(&code.as_u16().to_be_bytes());
    out.extend(message.iter().copied().filter(|&b| b != 0));
    out.push(0);
}

fn encode_request(out: &mut Vec<u8>, op: u16, req: &Request<'_>) {
    out.extend_from_slice(&op.to_be_bytes());
    push_cstr(out, req.filename);
    push_cstr(out, req.mode);
    for (name, value) in &req.options {
        push_cstr(out, name);
        push_cstr(out, value);
    }
}

fn push_cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

fn read_u16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Splits off one NUL-terminated string.
fn take_cstr<'a>(b: &'a [u8], field: &'static str) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .ok_or(DecodeError::Unterminated { field })?;
    Ok((&b[..end], &b[end + 1..]))
}

fn decode_request(body: &[u8]) -> Result<Request<'_>, DecodeError> {
    let (filename, rest) = take_cstr(body, "filename")?;
    let (mode, rest) = take_cstr(rest, "mode")?;
    Ok(Request {
        filename,
        mode,
        options: decode_options(rest)?,
    })
}

/// Decodes `name NUL value NUL` pairs. Trailing NUL padding (sent by some PXE ROMs) is
/// accepted and ignored; any other trailing byte makes the list malformed.
fn decode_options(mut rest: &[u8]) -> Result<OptionList<'_>, DecodeError> {
    let mut options = Vec::new();
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let (name, after_name) = take_cstr(rest, "option")?;
        if after_name.is_empty() {
            return Err(DecodeError::OptionWithoutValue);
        }
        let (value, after_value) =
            take_cstr(after_name, "option").map_err(|_| DecodeError::OptionWithoutValue)?;
        options.push((name, value));
        rest = after_value;
    }
    Ok(options)
}

#[cfg(test)]
mod tests;
