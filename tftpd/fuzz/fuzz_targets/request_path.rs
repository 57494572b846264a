//! Fuzzes the request-name checks (`RequestPath::parse`) against their documented contract,
//! stated here independently: a name is accepted exactly when it is at most 1024 bytes of
//! UTF-8 with no backslash and no control character, and its non-empty `/`-separated
//! components are at least one, none `.` or `..`, none over 255 bytes. What is accepted is
//! those components joined by single `/`s: relative, plain, and a fixed point of `parse`.
//! Every refusal is an audited access violation.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use tftpd::fs::resolve::{MAX_COMPONENT_LEN, MAX_PATH_LEN};
use tftpd::fs::{RequestPath, ResolveError};
use tftpd::proto::ErrorCode;

/// The contract: `Some(normalised)` when the name must be accepted.
fn contract(raw: &[u8]) -> Option<String> {
    if raw.len() > MAX_PATH_LEN {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    if text.contains('\\') || text.chars().any(char::is_control) {
        return None;
    }
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty()).collect();
    let plain = |p: &&str| *p != "." && *p != ".." && p.len() <= MAX_COMPONENT_LEN;
    (!parts.is_empty() && parts.iter().all(plain)).then(|| parts.join("/"))
}

fuzz_target!(|raw: &[u8]| {
    match (RequestPath::parse(raw), contract(raw)) {
        (Ok(path), Some(want)) => {
            let s = path.as_str();
            assert_eq!(s, want, "normalised form");
            assert!(!s.contains('\0'), "no NUL");
            assert!(
                Path::new(s)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{s:?}: relative, plain components only"
            );
            assert_eq!(path.to_string(), s, "Display is the normalised path");
            let rebuilt = match path.parent() {
                Some(dir) => format!("{dir}/{}", path.file_name()),
                None => path.file_name().to_string(),
            };
            assert_eq!(rebuilt, s, "parent + file name is the path");
            assert!(
                !path.file_name().contains('/'),
                "a file name is one component"
            );
            let again = RequestPath::parse(s.as_bytes()).expect("a normalised path is accepted");
            assert_eq!(again, path, "normalising is idempotent");
        }
        (Err(e), None) => {
            assert!(matches!(e, ResolveError::BadName { .. }), "{e:?}");
            assert_eq!(e.wire_error().code, ErrorCode::AccessViolation, "{e}");
            assert!(e.is_security_refusal(), "{e}: refusals are audited");
        }
        (Ok(path), None) => panic!("{raw:?} accepted as {path:?} against the contract"),
        (Err(e), Some(want)) => panic!("{raw:?} (would be {want:?}) refused: {e}"),
    }
});
