use super::*;

fn rule(pattern: &str, replace: &str) -> RemapRule {
    RemapRule {
        pattern: pattern.into(),
        action: RemapAction::Rewrite,
        replace: Some(replace.into()),
        all: false,
        repeat: false,
        ignore_case: false,
        lowercase: false,
        last: false,
        ops: Vec::new(),
        clients: Vec::new(),
    }
}

const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

#[test]
fn windows_paths_become_unix_paths() {
    let m = Remapper::new(&[RemapRule {
        all: true,
        ..rule(r"\\", "/")
    }])
    .expect("compiles");
    assert_eq!(
        m.map(r"\Boot\BCD", RemapOp::Read, V4),
        Mapped::Rewritten("/Boot/BCD".into())
    );
    assert_eq!(m.map("plain/name", RemapOp::Read, V4), Mapped::Unchanged);
}

#[test]
fn rules_apply_in_order_with_groups_case_folding_and_last() {
    let m = Remapper::new(&[
        RemapRule {
            ignore_case: true,
            lowercase: true,
            ..rule(r"^pxelinux\.cfg/(.*)$", "pxe/${1}")
        },
        RemapRule {
            last: true,
            ..rule(r"^pxe/", "boot/pxe/")
        },
        rule(r"^boot/", "never/"),
    ])
    .expect("compiles");
    assert_eq!(
        m.map("PXELINUX.CFG/Default", RemapOp::Read, V4),
        Mapped::Rewritten("boot/pxe/default".into()),
        "rule 1 folds case, rule 2 matches the result and stops"
    );
}

#[test]
fn client_prefix_ops_and_the_client_variable() {
    let m = Remapper::new(&[RemapRule {
        clients: vec!["10.1.0.0/16".parse().expect("prefix")],
        ops: vec![RemapOp::Read],
        ..rule(r"^(.*)$", "hosts/${client}/$1")
    }])
    .expect("compiles");
    assert_eq!(
        m.map("cfg", RemapOp::Read, V4),
        Mapped::Rewritten("hosts/10.1.2.3/cfg".into())
    );
    let mapped_v4: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
    assert_eq!(
        m.map("cfg", RemapOp::Read, mapped_v4),
        Mapped::Rewritten("hosts/10.1.2.3/cfg".into()),
        "a dual-stack socket's IPv4 client is seen as IPv4"
    );
    assert_eq!(
        m.map("cfg", RemapOp::Write, V4),
        Mapped::Unchanged,
        "reads only"
    );
    let other: IpAddr = "192.0.2.1".parse().expect("ip");
    assert_eq!(
        m.map("cfg", RemapOp::Read, other),
        Mapped::Unchanged,
        "other clients"
    );
}

#[test]
fn deny_rules_refuse_and_bad_rules_name_themselves() {
    let m = Remapper::new(&[
        rule("^a$", "b"),
        RemapRule {
            action: RemapAction::Deny,
            replace: None,
            ..rule(r"\.key$", "")
        },
    ])
    .expect("compiles");
    assert_eq!(m.map("secret.key", RemapOp::Read, V4), Mapped::Denied(1));
    let bad = Remapper::new(&[rule("ok", "x"), rule("(unclosed", "x")]).expect_err("bad regex");
    assert!(bad.to_string().starts_with("remap[1].match"), "{bad}");
    let missing = Remapper::new(&[RemapRule {
        replace: None,
        ..rule("x", "")
    }])
    .expect_err("rewrite without replace");
    assert!(
        missing.to_string().contains("remap[0].replace"),
        "{missing}"
    );
    let reserved = Remapper::new(&[rule("(?P<client>x)", "y")]).expect_err("reserved group name");
    assert!(reserved.to_string().contains("\"client\""), "{reserved}");
}

#[test]
fn a_rewrite_cannot_escape_the_root() {
    // The mapper itself may produce anything; the jail after it refuses escapes.
    let m = Remapper::new(&[rule("^(.*)$", "../../etc/$1")]).expect("compiles");
    let Mapped::Rewritten(name) = m.map("passwd", RemapOp::Read, V4) else {
        panic!("the rule matches")
    };
    assert!(
        crate::fs::RequestPath::parse(name.as_bytes()).is_err(),
        "{name} must be refused by the name checks"
    );
}

#[test]
fn a_name_grown_past_the_longest_path_is_not_grown_further() {
    let grow = RemapRule {
        all: true,
        ..rule(".", "${client}${client}")
    };
    let m = Remapper::new(&[grow.clone(), grow.clone(), grow]).expect("compiles");
    let name = "a".repeat(100);
    let Mapped::Rewritten(to) = m.map(&name, RemapOp::Read, V4) else {
        panic!("rewritten");
    };
    // One rule: 100 × 2 × "10.1.2.3" = 1600 bytes, past the 1024-byte limit; the other two
    // rules (which would make it 20 MB) do not run, and the name checks refuse it.
    assert_eq!(to.len(), 1600);
    assert!(crate::fs::RequestPath::parse(to.as_bytes()).is_err());
}

#[test]
fn repeat_applies_the_rule_until_it_no_longer_matches() {
    let m = Remapper::new(&[RemapRule {
        repeat: true,
        ..rule("^/", "")
    }])
    .expect("compiles");
    assert_eq!(
        m.map("///boot", RemapOp::Read, V4),
        Mapped::Rewritten("boot".into())
    );
    let once = Remapper::new(&[rule("^/", "")]).expect("compiles");
    assert_eq!(
        once.map("///boot", RemapOp::Read, V4),
        Mapped::Rewritten("//boot".into()),
        "without repeat: one replacement"
    );
    let stuck = Remapper::new(&[RemapRule {
        repeat: true,
        ..rule("a", "a")
    }])
    .expect("compiles");
    assert_eq!(
        stuck.map("a", RemapOp::Read, V4),
        Mapped::Denied(0),
        "a loop is refused"
    );
    let grows = Remapper::new(&[RemapRule {
        repeat: true,
        ..rule("a", "aa")
    }])
    .expect("compiles");
    assert_eq!(
        grows.map("a", RemapOp::Read, V4),
        Mapped::Denied(0),
        "growth is refused"
    );
    let long = "x".repeat(600);
    let burst = Remapper::new(&[RemapRule {
        repeat: true,
        all: true,
        ..rule("", &long)
    }])
    .expect("compiles");
    assert_eq!(
        burst.map("ab", RemapOp::Read, V4),
        Mapped::Denied(0),
        "a first round past the longest path is not repeated"
    );
}

#[test]
fn client_hex_is_the_address_in_upper_case_hex() {
    let m = Remapper::new(&[rule("^", "${client_hex}/")]).expect("compiles");
    assert_eq!(
        m.map("f", RemapOp::Read, V4),
        Mapped::Rewritten("0A010203/f".into())
    );
    let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
    assert_eq!(
        m.map("f", RemapOp::Read, mapped),
        Mapped::Rewritten("0A010203/f".into()),
        "IPv4-mapped clients as IPv4"
    );
    assert!(Remapper::new(&[rule("(?P<client_hex>x)", "y")]).is_err());
}
