//! Text log lines that client text cannot break. A request's file name, mode, option names
//! and values and a client's ERROR message reach the log as the client sent them, and the
//! text formatter writes a `%`-field as it is: a CR or LF in a file name would start a new
//! line that looks like any record the daemon writes (an "upload stored" audit line, say).
//! Rather than trusting every call site to escape, each formatted text line passes through
//! [`escape_controls`] on its way to the queue, so no field, message or error text can carry
//! a raw control character, whatever logged it.
//!
//! What is escaped: every Unicode control character (C0, DEL and C1, which includes NEL,
//! U+0085, a line break to some terminals and viewers) and the line and paragraph separators
//! U+2028 and U+2029, except the newline that ends the line. An ASCII one becomes `\xNN`, any
//! other `\u{NNNN}`. Backslashes are left as they are, so a Windows path such as
//! `\Boot\BCD` stays readable and greppable; the price is that a name that literally contains
//! `\x0a` reads like one that contained a newline, which forges nothing.
//!
//! JSON lines do not need this: the JSON formatter escapes control characters inside strings
//! itself, and a line stays one object (the attack suite checks both).

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character a text log line must not carry raw.
fn must_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `line` (one formatted record, normally ending in `\n`) with every control character but
/// the final newline escaped. Borrows when there is nothing to escape, the common case.
pub(crate) fn escape_controls(line: &[u8]) -> Cow<'_, [u8]> {
    let (body, end) = match line.strip_suffix(b"\n") {
        Some(body) => (body, b"\n".as_slice()),
        None => (line, b"".as_slice()),
    };
    // Bytes that can start a character to escape: C0 and DEL, and the lead bytes of C1
    // (0xC2 0x80..=0x9F) and of U+2028/U+2029 (0xE2 0x80 0xA8/0xA9). Anything else is clean.
    if !body
        .iter()
        .any(|&b| b < 0x20 || b == 0x7f || b == 0xc2 || b == 0xe2)
    {
        return Cow::Borrowed(line);
    }
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !must_escape(c) {
            out.push(c);
        } else if c.is_ascii() {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        }
    }
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(end);
    Cow::Owned(bytes)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn escaped(s: &str) -> String {
        String::from_utf8(escape_controls(s.as_bytes()).into_owned()).expect("UTF-8 out")
    }

    #[test]
    fn a_clean_line_is_borrowed_unchanged() {
        let line = b"2026-12-07T08:00:00Z  INFO tftpd: transfer started file=pxelinux.0\n";
        assert!(matches!(escape_controls(line), Cow::Borrowed(_)));
        assert_eq!(&*escape_controls(line), line);
        // Non-ASCII text that is not a control character stays as it is.
        assert_eq!(escaped("file=ñandú/ü€\n"), "file=ñandú/ü€\n");
    }

    #[test]
    fn cr_lf_and_other_c0_controls_become_hex_escapes() {
        assert_eq!(
            escaped("file=a\r\n1999-12-31T23:59:59Z  WARN forged\n"),
            "file=a\\x0d\\x0a1999-12-31T23:59:59Z  WARN forged\n"
        );
        assert_eq!(
            escaped("a\tb\x1b[2Jc\x00d\x7fe\n"),
            "a\\x09b\\x1b[2Jc\\x00d\\x7fe\n"
        );
    }

    #[test]
    fn c1_controls_and_unicode_line_separators_are_escaped() {
        assert_eq!(
            escaped("a\u{85}b\u{2028}c\u{2029}d\u{9b}\n"),
            "a\\u{0085}b\\u{2028}c\\u{2029}d\\u{009b}\n"
        );
        // Other characters sharing those lead bytes are not.
        assert_eq!(escaped("\u{a9}\u{2026}\n"), "\u{a9}\u{2026}\n");
    }

    #[test]
    fn only_the_final_newline_is_kept_and_backslashes_are_left_alone() {
        assert_eq!(escaped("\n\n"), "\\x0a\n");
        assert_eq!(escaped("no newline\r"), "no newline\\x0d");
        assert_eq!(escaped("file=\\Boot\\BCD\n"), "file=\\Boot\\BCD\n");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_passed_through() {
        let out = escape_controls(b"name=\xff\x0a\n");
        assert_eq!(&*out, "name=\u{fffd}\\x0a\n".as_bytes());
    }

    proptest! {
        /// Whatever the input, the output is one line: no control character or separator
        /// but a final newline, and the input's printable text survives in order.
        #[test]
        fn any_line_comes_out_as_exactly_one_line(s in any::<String>()) {
            let line = format!("{s}\n");
            let out = escaped(&line);
            let body = out.strip_suffix('\n').expect("the final newline is kept");
            prop_assert!(!body.chars().any(must_escape), "{out:?}");
            let kept: String = s.chars().filter(|&c| !must_escape(c)).collect();
            let out_kept: String = body.chars().filter(|&c| !must_escape(c)).collect();
            // The escapes add only ASCII `\xNN` / `\u{…}` text between the kept characters.
            let mut rest = out_kept.as_str();
            for c in kept.chars() {
                let at = rest.find(c).expect("every printable character is kept, in order");
                rest = &rest[at + c.len_utf8()..];
            }
        }
    }
}
