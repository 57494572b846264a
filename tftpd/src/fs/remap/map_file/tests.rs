use std::net::IpAddr;

use super::*;
use crate::fs::remap::{Mapped, Remapper};

const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, 1));
const V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));

fn remapper(text: &str) -> Remapper {
    let t = translate(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    Remapper::new(&t.rules).unwrap_or_else(|e| panic!("{text:?} compiles: {e}"))
}

/// What the map file makes of `name` read by `client`: the new name, or None when refused.
fn mapped(text: &str, name: &str, op: RemapOp, client: IpAddr) -> Option<String> {
    match remapper(text).map(name, op, client) {
        Mapped::Unchanged => Some(name.to_string()),
        Mapped::Rewritten(to) => Some(to),
        Mapped::Denied(_) => None,
    }
}

fn read(text: &str, name: &str) -> Option<String> {
    mapped(text, name, RemapOp::Read, V4)
}

fn refused(text: &str) -> MapFileError {
    translate(text).expect_err(&format!("{text:?} must be refused"))
}

#[test]
fn rewrite_replaces_the_matched_part_with_back_references() {
    let map = r"r ^pxelinux\.cfg/(.*) pxe/\1";
    assert_eq!(
        read(map, "pxelinux.cfg/default").as_deref(),
        Some("pxe/default")
    );
    assert_eq!(read(map, "other").as_deref(), Some("other"));
    assert_eq!(
        read(r"r b(a)r \0-\1", "xbarx").as_deref(),
        Some("xbar-ax"),
        "\\0: the whole match"
    );
}

#[test]
fn g_repeats_until_no_match_as_tftp_hpa_does() {
    assert_eq!(read(r"rg \\ /", r"\Boot\BCD").as_deref(), Some("/Boot/BCD"));
    // An anchored rule applies again to its own result: ///x -> //x -> /x -> x.
    assert_eq!(
        read(r"rg ^/", "///x").as_deref(),
        Some("x"),
        "no replacement: empty"
    );
    // A rule that always matches would loop: tftp-hpa stops it and refuses the request.
    assert_eq!(read(r"rg a a", "a"), None);
}

#[test]
fn flags_i_e_a_g_p_4_6_map_onto_the_rule_fields() {
    let map = "ri ^BOOT/ boot/\nre ^boot/(.*) \\1\nr ^x y\n";
    assert_eq!(
        read(map, "Boot/a").as_deref(),
        Some("a"),
        "i, then e stops before r ^x"
    );
    assert_eq!(read(map, "x").as_deref(), Some("y"));
    assert_eq!(
        read(map, "boot/x").as_deref(),
        Some("x"),
        "e stops: ^x never sees \"x\""
    );
    assert_eq!(read("a \\.key$", "a.key"), None, "a refuses");
    assert_eq!(read("a \\.key$", "a.bin").as_deref(), Some("a.bin"));
    let ops = "rG ^ r/\nrP ^ w/\n";
    assert_eq!(
        mapped(ops, "f", RemapOp::Read, V4).as_deref(),
        Some("r/f"),
        "G: reads only"
    );
    assert_eq!(
        mapped(ops, "f", RemapOp::Write, V4).as_deref(),
        Some("w/f"),
        "P: writes only"
    );
    let families = "r4 ^ v4/\nr6 ^ v6/\n";
    assert_eq!(
        mapped(families, "f", RemapOp::Read, V4).as_deref(),
        Some("v4/f")
    );
    assert_eq!(
        mapped(families, "f", RemapOp::Read, V6).as_deref(),
        Some("v6/f")
    );
    let mapped_v4: IpAddr = "::ffff:192.168.0.1".parse().expect("ip");
    assert_eq!(
        mapped(families, "f", RemapOp::Read, mapped_v4).as_deref(),
        Some("v4/f"),
        "an IPv4 client on the dual-stack socket is IPv4"
    );
    assert_eq!(
        read("e ^keep\nr .* other", "keep").as_deref(),
        Some("keep"),
        "e alone stops"
    );
}

#[test]
fn client_address_substitutions() {
    let map = r"r ^ \i/\x/";
    assert_eq!(read(map, "f").as_deref(), Some("192.168.0.1/C0A80001/f"));
    assert_eq!(
        mapped(map, "f", RemapOp::Read, V6).as_deref(),
        Some("2001:db8::1/20010DB8000000000000000000000001/f")
    );
}

#[test]
fn lower_casing_the_whole_name() {
    assert_eq!(
        read(r"r ^(.*)$ \L\1", "PXELinux.0").as_deref(),
        Some("pxelinux.0")
    );
    assert_eq!(read(r"r .* \L\0\E", "ABC").as_deref(), Some("abc"));
    let e = refused(r"r ^A \La");
    assert!(e.message.contains("anchor it as ^...$"), "{e}");
    assert!(
        refused(r"r ^(.*)$ x\U\1")
            .message
            .contains("no upper-casing")
    );
    assert!(refused(r"r ^(.*)$ \1\L").message.contains("\\L here"));
}

#[test]
fn escapes_comments_and_whitespace_follow_in_tftpd() {
    assert_eq!(
        read("r a\\ b x  # a comment", "a b").as_deref(),
        Some("x"),
        "\\ is a space"
    );
    assert_eq!(read(r"r \# hash", "#").as_deref(), Some("hash"));
    assert_eq!(
        read(r"r x a\\b", "x").as_deref(),
        Some(r"a\b"),
        "\\\\ is a backslash"
    );
    assert_eq!(read(r"r x $1", "x").as_deref(), Some("$1"), "$ is literal");
    assert_eq!(
        read("\r\n   \n# only a comment\n", "f").as_deref(),
        Some("f")
    );
    assert_eq!(
        read("r\tx\ty\r\n", "x").as_deref(),
        Some("y"),
        "tabs and CRLF"
    );
}

#[test]
fn posix_regex_syntax_is_translated() {
    assert_eq!(
        read(r"r [\] /", r"a\b").as_deref(),
        Some("a/b"),
        "backslash literal in []"
    );
    assert_eq!(
        read(r"r []x] y", "]").as_deref(),
        Some("y"),
        "] first in []"
    );
    assert_eq!(read(r"r [[:upper:]]+ U", "abCDe").as_deref(), Some("abUe"));
    assert_eq!(
        read(r"r \d D", "d1").as_deref(),
        Some("D1"),
        "\\d is d in POSIX"
    );
    assert_eq!(
        read(r"r \<b B", "a b").as_deref(),
        Some("a B"),
        "GNU word start"
    );
    assert_eq!(read(r"r a{2} x", "aaa").as_deref(), Some("xa"));
    assert_eq!(
        read(r"r [a&~] x", "~").as_deref(),
        Some("x"),
        "& and ~ literal in []"
    );
    assert!(refused(r"r (a)\1 x").message.contains("back-reference"));
    assert!(refused(r"r [[=a=]] x").message.contains("collating"));
    assert!(refused(r"r [abc x").message.contains("without its ]"));
}

#[test]
fn what_tftpd_cannot_express_is_an_error_naming_the_line() {
    for (text, line, says) in [
        ("r a b\ns a b\n", 2, "flag s"),
        ("\n\n~a x\n", 3, "flag ~"),
        ("rj a b", 1, "invalid flag 'j'"),
        ("R a b", 1, "invalid flag 'R'"),
        ("ra a b", 1, "r and a"),
        ("r\n", 1, "no regex"),
        ("r a(", 1, "regex"),
    ] {
        let e = refused(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.to_string().contains(says), "{text:?}: {e}");
    }
}

#[test]
fn details_that_change_no_served_file_are_warnings() {
    let t = translate("a x no\nr a|ab c\nr a b extra\nrGP a b\n").expect("accepted");
    let w = t.warnings.join("\n");
    assert!(w.contains("line 1") && w.contains("error text"), "{w}");
    assert!(w.contains("line 2") && w.contains("longest"), "{w}");
    assert!(w.contains("line 3") && w.contains("\"extra\""), "{w}");
    assert!(w.contains("line 4") && w.contains("does nothing"), "{w}");
    assert_eq!(
        t.rules.len(),
        3,
        "the rule that can never apply is left out"
    );
}

proptest::proptest! {
    /// Any map file, however odd (the characters that mean something to either syntax, and
    /// any others), is translated or refused by a line it has, never a panic; what is
    /// translated compiles, and maps any name.
    #[test]
    fn any_map_file_translates_or_names_a_line(
        text in r"([rgieasGP46~ \t#\\\[\]\(\)\{\}\|\.\*\+\?\^\$:=<>`'0-9a-zLUEix/-]{0,24}\n?){0,4}",
        name in r"[a-zA-Z0-9/\\. ]{0,16}",
    ) {
        match translate(&text) {
            Ok(t) => {
                let m = Remapper::new(&t.rules).expect("translated rules compile");
                let _ = m.map(&name, RemapOp::Read, V4);
            }
            Err(e) => {
                let lines = text.split('\n').count();
                proptest::prop_assert!((1..=lines).contains(&e.line), "{e} in {text:?}");
            }
        }
    }
}
