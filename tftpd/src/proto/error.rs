//! TFTP wire error codes (RFC 1350 §5, RFC 2347 code 8) and the short texts sent with them.
//!
//! This type is what a client sees. It never carries a server path or an OS error text: the
//! shell maps its own errors onto one of these codes and logs the detail instead.

use std::fmt;

/// An error code as carried in a TFTP ERROR packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    NotDefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransferId,
    /// 6: file already exists.
    FileExists,
    /// 7: no such user.
    NoSuchUser,
    /// 8: option negotiation refused (RFC 2347).
    OptionRefused,
    /// Any other value a peer may send; we never send one.
    Other(u16),
}

impl ErrorCode {
    /// The numeric value on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            Self::NotDefined => 0,
            Self::FileNotFound => 1,
            Self::AccessViolation => 2,
            Self::DiskFull => 3,
            Self::IllegalOperation => 4,
            Self::UnknownTransferId => 5,
            Self::FileExists => 6,
            Self::NoSuchUser => 7,
            Self::OptionRefused => 8,
            Self::Other(v) => v,
        }
    }

    /// The code for a wire value.
    pub fn from_u16(v: u16) -> Self {
        match v {
            0 => Self::NotDefined,
            1 => Self::FileNotFound,
            2 => Self::AccessViolation,
            3 => Self::DiskFull,
            4 => Self::IllegalOperation,
            5 => Self::UnknownTransferId,
            6 => Self::FileExists,
            7 => Self::NoSuchUser,
            8 => Self::OptionRefused,
            other => Self::Other(other),
        }
    }

    /// A fixed, short label for logs and the `code` metric label (a closed set).
    pub fn label(self) -> &'static str {
        match self {
            Self::NotDefined => "not_defined",
            Self::FileNotFound => "file_not_found",
            Self::AccessViolation => "access_violation",
            Self::DiskFull => "disk_full",
            Self::IllegalOperation => "illegal_operation",
            Self::UnknownTransferId => "unknown_tid",
            Self::FileExists => "file_exists",
            Self::NoSuchUser => "no_such_user",
            Self::OptionRefused => "option_refused",
            Self::Other(_) => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_u16(), self.label())
    }
}

/// An ERROR the server decided to send: a code and a message safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The code on the wire.
    pub code: ErrorCode,
    /// The message on the wire: fixed text, never a path or an OS error string.
    pub message: &'static str,
}

impl WireError {
    /// A wire error with the given code and message.
    pub const fn new(code: ErrorCode, message: &'static str) -> Self {
        Self { code, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_value() {
        for v in 0..=20u16 {
            assert_eq!(
                ErrorCode::from_u16(v).as_u16(),
                v,
                "code {v} must round-trip"
            );
        }
    }
}
