//! The text checks of a request name: what a name may contain before anything touches the
//! filesystem. No I/O here; [`super::Root`] resolves what passes.

use std::fmt;

use super::ResolveError;

/// Longest request path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest single path component accepted, in bytes (NAME_MAX on Linux and the BSDs).
pub const MAX_COMPONENT_LEN: usize = 255;

/// A request name that passed the text checks: UTF-8, relative, made of plain components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    path: String,
}

impl RequestPath {
    /// Checks a raw request name. Leading `/` characters are dropped (clients often send
    /// `/pxelinux.0` meaning the root's file) and repeated `/` collapse; then the name must be
    /// non-empty, with no `.` or `..` component, no backslash and no control character. NUL and
    /// the C0 controls and DEL are refused, and so are the C1 controls (U+0080..=U+009F): none
    /// belongs in a boot file name, and all of them can garble a terminal reading the log.
    pub fn parse(raw: &[u8]) -> Result<Self, ResolveError> {
        let bad = |reason| ResolveError::BadName {
            name: String::from_utf8_lossy(raw).into_owned(),
            reason,
        };
        if raw.len() > MAX_PATH_LEN {
            return Err(bad("longer than 1024 bytes"));
        }
        let text = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
        if text.contains('\\') {
            // Windows clients send `\Boot\BCD`; a remap rule can translate it. Taken as is,
            // a backslash is a legal Unix name byte that would only confuse the operator.
            return Err(bad("contains a backslash"));
        }
        if text.chars().any(|c| c.is_control()) {
            return Err(bad("contains a control character"));
        }
        let mut parts = Vec::new();
        for part in text.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Err(bad("contains a . or .. component"));
            }
            if part.len() > MAX_COMPONENT_LEN {
                return Err(bad("has a component longer than 255 bytes"));
            }
            parts.push(part);
        }
        if parts.is_empty() {
            return Err(bad("names no file"));
        }
        Ok(Self {
            path: parts.join("/"),
        })
    }

    /// The normalised relative path.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// Everything before the last component, if there is anything.
    pub fn parent(&self) -> Option<&str> {
        self.path.rsplit_once('/').map(|(dir, _)| dir)
    }
}

impl fmt::Display for RequestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ErrorCode;

    #[test]
    fn names_are_normalised_and_checked() {
        let ok = |raw: &[u8], want: &str| {
            let p = RequestPath::parse(raw).unwrap_or_else(|e| panic!("{raw:?} refused: {e}"));
            assert_eq!(p.as_str(), want, "normalising {raw:?}");
        };
        ok(b"/pxelinux.0", "pxelinux.0");
        ok(b"//a//b/", "a/b");
        ok(b"boot/grub/grub.cfg", "boot/grub/grub.cfg");
        for bad in [
            &b""[..],
            b"/",
            b".",
            b"..",
            b"../secret",
            b"a/../../secret",
            b"/../secret",
            b"a/./b",
            b"..\\secret",
            b"a\\b",
            b"a\x01b",
            b"a\x7fb",
            b"a\nb",
            b"a\0b",
            b"pxelinux.0\0../../secret",
            b"a\xc2\x85b",
            b"\xff\xfe",
            b"a\xc0\xafb",
        ] {
            let err = RequestPath::parse(bad).expect_err("must be refused");
            assert!(
                matches!(err, ResolveError::BadName { .. }),
                "{bad:?}: {err}"
            );
            assert_eq!(
                err.wire_error().code,
                ErrorCode::AccessViolation,
                "{bad:?} is an access violation on the wire"
            );
            assert!(err.is_security_refusal(), "{bad:?} is audited");
        }
        let p = RequestPath::parse(b"a/b/c").expect("valid");
        assert_eq!(
            (p.parent(), p.file_name()),
            (Some("a/b"), "c"),
            "parent and file name split at the last /"
        );
        let p = RequestPath::parse(b"/top").expect("valid");
        assert_eq!(
            (p.parent(), p.file_name()),
            (None, "top"),
            "a top-level name has no parent"
        );
    }

    #[test]
    fn names_longer_than_the_limits_are_refused() {
        let part = "a".repeat(MAX_COMPONENT_LEN);
        assert!(
            RequestPath::parse(part.as_bytes()).is_ok(),
            "a 255-byte component is allowed"
        );
        let four = [part.as_str(); 4].join("/");
        let total = format!("{four}/{}", "b".repeat(MAX_PATH_LEN - four.len() - 1));
        assert_eq!(
            total.len(),
            MAX_PATH_LEN,
            "the test name is exactly at the limit"
        );
        assert!(
            RequestPath::parse(total.as_bytes()).is_ok(),
            "a 1024-byte path is allowed"
        );
        for (name, why) in [
            ("a".repeat(MAX_COMPONENT_LEN + 1), "a 256-byte component"),
            (format!("{total}b"), "a 1025-byte path"),
            (
                format!("/{total}"),
                "1025 bytes before the leading / is dropped",
            ),
            ("é".repeat(128), "a 256-byte component of 2-byte characters"),
            ("x".repeat(70_000), "a name longer than any UDP datagram"),
        ] {
            let err = RequestPath::parse(name.as_bytes()).expect_err(why);
            assert!(matches!(err, ResolveError::BadName { .. }), "{why}: {err}");
        }
    }
}
