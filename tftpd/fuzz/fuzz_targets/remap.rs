//! Fuzzes the `[[remap]]` rules: any rule set either compiles or is refused with an error
//! that names its first bad rule (never a panic), and a compiled set maps any name without
//! panicking, deterministically, to a result the rules can explain: a denial names a deny
//! rule (or a `repeat` rule that would not stop) that applies, a rewrite differs from the name, and rules that do not apply to this
//! operation or client change nothing (removing them gives the same answer).
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tftpd::config::{RemapAction, RemapOp, RemapRule, SourcePrefix};
use tftpd::fs::remap::{Mapped, RemapError, Remapper};

/// Few, short rules: `all` with an empty match multiplies a name's length by the
/// replacement's at every rule, and the point here is the logic, not the allocator.
const MAX_RULES: usize = 3;
const MAX_PATTERN: usize = 48;
const MAX_REPLACE: usize = 16;
const MAX_NAME: usize = 128;

#[derive(Debug, Arbitrary)]
struct Rule {
    pattern: String,
    deny: bool,
    replace: Option<String>,
    all: bool,
    repeat: bool,
    ignore_case: bool,
    lowercase: bool,
    last: bool,
    /// Bit 0: read, bit 1: write.
    ops: u8,
    clients: Vec<(IpAddr, u8)>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    rules: Vec<Rule>,
    name: String,
    write: bool,
    client: IpAddr,
}

fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn rule(r: &Rule) -> RemapRule {
    let mut ops = Vec::new();
    if r.ops & 1 != 0 {
        ops.push(RemapOp::Read);
    }
    if r.ops & 2 != 0 {
        ops.push(RemapOp::Write);
    }
    RemapRule {
        pattern: cut(&r.pattern, MAX_PATTERN),
        action: if r.deny {
            RemapAction::Deny
        } else {
            RemapAction::Rewrite
        },
        replace: r.replace.as_deref().map(|s| cut(s, MAX_REPLACE)),
        all: r.all,
        repeat: r.repeat,
        ignore_case: r.ignore_case,
        lowercase: r.lowercase,
        last: r.last,
        ops,
        // Through the config's own parser: an out-of-range length is not a prefix.
        clients: r
            .clients
            .iter()
            .take(2)
            .filter_map(|(ip, len)| format!("{ip}/{len}").parse::<SourcePrefix>().ok())
            .collect(),
    }
}

fn applies(r: &RemapRule, op: RemapOp, client: IpAddr) -> bool {
    (r.ops.is_empty() || r.ops.contains(&op))
        && (r.clients.is_empty() || r.clients.iter().any(|p| p.contains(client)))
}

fuzz_target!(|input: Input| {
    let rules: Vec<RemapRule> = input.rules.iter().take(MAX_RULES).map(rule).collect();
    let remapper = match Remapper::new(&rules) {
        Ok(r) => r,
        Err(e) => return check_refusal(&rules, &e),
    };
    assert_eq!(remapper.is_empty(), rules.is_empty());
    let name = cut(&input.name, MAX_NAME);
    let op = if input.write {
        RemapOp::Write
    } else {
        RemapOp::Read
    };
    let mapped = remapper.map(&name, op, input.client);
    assert_eq!(
        remapper.map(&name, op, input.client),
        mapped,
        "deterministic"
    );
    match &mapped {
        Mapped::Unchanged => {}
        Mapped::Rewritten(to) => {
            assert_ne!(to, &name, "a rewrite changes the name");
            assert!(
                rules
                    .iter()
                    .any(|r| r.action == RemapAction::Rewrite && applies(r, op, input.client)),
                "rewritten without an applicable rewrite rule"
            );
        }
        Mapped::Denied(i) => {
            let r = rules.get(*i).expect("a denial names a rule that exists");
            // A deny rule, or a repeat rule that would not stop (tftp-hpa's remap loop).
            assert!(
                r.action == RemapAction::Deny || r.repeat,
                "rule {i} is a deny rule or a repeat rule"
            );
            assert!(applies(r, op, input.client), "rule {i} applies");
        }
    }

    // Rules that do not apply to this request are as good as absent.
    let kept: Vec<usize> = (0..rules.len())
        .filter(|&i| applies(&rules[i], op, input.client))
        .collect();
    let subset: Vec<RemapRule> = kept.iter().map(|&i| rules[i].clone()).collect();
    let fewer = Remapper::new(&subset).expect("a subset of valid rules compiles");
    let expected = match fewer.map(&name, op, input.client) {
        Mapped::Denied(j) => Mapped::Denied(kept[j]),
        other => other,
    };
    assert_eq!(mapped, expected, "rules that do not apply change nothing");
});

/// An error names the first rule that cannot compile, and for the reason given.
fn check_refusal(rules: &[RemapRule], e: &RemapError) {
    let index = match *e {
        RemapError::Pattern { index, .. }
        | RemapError::MissingReplace { index }
        | RemapError::ReservedGroup { index } => index,
    };
    assert!(
        Remapper::new(&rules[..index]).is_ok(),
        "{e}: an earlier rule was bad"
    );
    let alone = Remapper::new(std::slice::from_ref(&rules[index]))
        .expect_err("the named rule is bad on its own");
    assert_eq!(
        alone.to_string(),
        e.to_string()
            .replacen(&format!("remap[{index}]"), "remap[0]", 1)
    );
    match e {
        RemapError::MissingReplace { .. } => {
            assert_eq!(rules[index].action, RemapAction::Rewrite);
            assert!(rules[index].replace.is_none());
        }
        RemapError::ReservedGroup { .. } => {
            assert!(
                rules[index].pattern.contains("client"),
                "a group named client"
            );
        }
        RemapError::Pattern { .. } => {}
    }
}
