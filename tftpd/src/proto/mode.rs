//! Transfer modes (RFC 1350 §5): `octet` and `netascii`, compared case-insensitively; `mail`
//! is obsolete (RFC 1123 §4.2.2.1 says it should not be supported) and refused.

use super::error::{ErrorCode, WireError};

/// A transfer mode this server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Raw bytes.
    Octet,
    /// Text with CR LF line ends on the wire.
    Netascii,
}

impl Mode {
    /// Parses a request's mode field.
    pub fn parse(raw: &[u8]) -> Result<Self, WireError> {
        if raw.eq_ignore_ascii_case(b"octet") {
            Ok(Self::Octet)
        } else if raw.eq_ignore_ascii_case(b"netascii") {
            Ok(Self::Netascii)
        } else if raw.eq_ignore_ascii_case(b"mail") {
            Err(WireError::new(
                ErrorCode::IllegalOperation,
                "mail mode not supported",
            ))
        } else {
            Err(WireError::new(
                ErrorCode::IllegalOperation,
                "unknown transfer mode",
            ))
        }
    }

    /// The mode's name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Octet => "octet",
            Self::Netascii => "netascii",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_case_insensitive_and_mail_is_refused() {
        assert_eq!(Mode::parse(b"OcTeT"), Ok(Mode::Octet));
        assert_eq!(Mode::parse(b"NETASCII"), Ok(Mode::Netascii));
        for bad in [&b"mail"[..], b"MAIL", b"binary", b"", b"octet "] {
            let err = Mode::parse(bad).expect_err("must be refused");
            assert_eq!(
                err.code,
                ErrorCode::IllegalOperation,
                "{bad:?} gets ERROR 4"
            );
        }
    }
}
