//! The operator artifacts in `dist/` against the real daemon: every metric, label and label
//! value that the Prometheus rules, their promtool tests and the Grafana dashboard name must
//! appear on a running daemon's `/metrics` page, every recording rule they use must be
//! defined, the dashboard must show every metric family, and its JSON must be well formed
//! (unique panel ids, a place on the grid, a query in every target).
//!
//! The names are found by scanning the files' text for PromQL selectors, so comments and
//! annotations that name a metric are held to the same rule. promtool itself (syntax, firing)
//! runs in `cargo xtask check-dist`.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use harness::{Daemon, DaemonArgs, METRICS_TIMEOUT, free_tcp_port, wait_for_metrics};

const ALERTS: &str = "dist/prometheus/alerts.yml";
const RECORDING: &str = "dist/prometheus/recording.yml";
const RULE_TESTS: &str = "dist/prometheus/alerts.test.yml";
const DASHBOARD: &str = "dist/grafana/tftpd.json";

/// Labels Prometheus adds when it scrapes (target labels), absent from the page itself.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];
/// Label values the daemon exports only in situations a test daemon with `--ebpf off` is not
/// in: the kernel filter paths while those filters are attached, and classic BPF's drops
/// without a reason (docs/monitoring.md).
const SITUATIONAL_VALUES: [(&str, &str, &str); 7] = [
    ("tftpd_filter_packets_total", "path", "socket"),
    ("tftpd_filter_packets_total", "path", "cbpf"),
    ("tftpd_filter_packets_total", "path", "xdp"),
    ("tftpd_filter_packets_total", "reason", "unclassified"),
    ("tftpd_filter_bytes_total", "path", "socket"),
    ("tftpd_filter_bytes_total", "path", "cbpf"),
    ("tftpd_filter_bytes_total", "path", "xdp"),
];
/// Labels whose values come from the configuration, so any value is real.
const CONFIGURED_LABELS: [&str; 1] = ["listen"];

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// One scraped page: the label sets of each sample name, and each family's type.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<String, Vec<BTreeMap<String, String>>>,
    families: BTreeMap<String, String>,
}

/// Reads a quoted string starting at `s[0]` (the quote); returns it and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    let (_, q) = chars
        .next()
        .filter(|(_, c)| matches!(c, '"' | '\'' | '`'))?;
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, c) if c == q => return Some((out, &s[i + 1..])),
            (_, c) => {
                out.push(c);
                escaped = false;
            }
        }
    }
    None
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

impl Exposition {
    fn parse(page: &str) -> Self {
        let mut e = Self::default();
        let body = page.split_once("\r\n\r\n").map_or(page, |(_, b)| b);
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("a TYPE line has a type");
                e.families.insert(name.to_string(), kind.to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
            let (name, mut rest) = line.split_at(end);
            let mut labels = BTreeMap::new();
            if let Some(inner) = rest.strip_prefix('{') {
                rest = inner;
                while let Some((label, after)) = rest.split_once('=') {
                    let (value, after) = quoted(after).expect("a quoted label value");
                    labels.insert(label.trim_start_matches(',').to_string(), value);
                    rest = after;
                    if let Some(after) = rest.strip_prefix('}') {
                        rest = after;
                        break;
                    }
                }
            }
            assert!(
                rest.trim().parse::<f64>().is_ok(),
                "sample without a value: {line}"
            );
            e.samples.entry(name.to_string()).or_default().push(labels);
        }
        e
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

/// `label op "value"`.
type Matcher = (String, Op, String);

/// `metric{label op "value", …}` as written in a rule, test or panel.
#[derive(Debug)]
struct Selector {
    metric: String,
    matchers: Vec<Matcher>,
}

/// Every selector of a family the daemon exports (`tftpd_*`, and the standard `process_*`
/// ones) and every recording-rule name (`level:metric:ops`) in `text`.
fn references(text: &str) -> (Vec<Selector>, BTreeSet<String>) {
    let mut selectors = Vec::new();
    let mut recorded = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let before = text.len() - rest.len() + start;
        let prev = text[..before].chars().next_back();
        let word_end = rest[start..]
            .find(|c: char| !is_name_char(c))
            .map_or(rest.len(), |n| start + n);
        let word = rest[start..word_end].trim_end_matches(':');
        rest = &rest[word_end..];
        if prev.is_some_and(|c| c == '$' || c == '.' || c == '/' || c == '#') {
            continue;
        }
        if word.matches(':').count() == 2 && word.contains("tftpd") {
            recorded.insert(word.to_string());
        } else if (word.starts_with("tftpd_") || word.starts_with("process_"))
            && !word.contains(':')
        {
            let mut matchers = Vec::new();
            if let Some(inner) = rest.trim_start().strip_prefix('{') {
                let (parsed, after) = parse_matchers(inner)
                    .unwrap_or_else(|| panic!("unparseable matchers after {word}: {{{inner:.60}"));
                matchers = parsed;
                rest = after;
            }
            selectors.push(Selector {
                metric: word.to_string(),
                matchers,
            });
        }
    }
    (selectors, recorded)
}

/// Parses `label op "value", …}`; returns the matchers and the text after the brace.
fn parse_matchers(mut s: &str) -> Option<(Vec<Matcher>, &str)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start().trim_start_matches(',').trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Some((out, after));
        }
        let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
        let label = s[..end].to_string();
        s = s[end..].trim_start();
        let (op, len) = [
            ("=~", Op::Re),
            ("!~", Op::NotRe),
            ("!=", Op::Ne),
            ("=", Op::Eq),
        ]
        .into_iter()
        .find(|(text, _)| s.starts_with(text))
        .map(|(text, op)| (op, text.len()))?;
        let (value, after) = quoted(s[len..].trim_start())?;
        out.push((label, op, value));
        s = after;
    }
}

/// The recording rules `recording.yml` defines.
fn defined_records(recording: &str) -> BTreeSet<String> {
    recording
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// What in `text` (from `file`) is not on the scraped page; empty when all is real.
fn problems(file: &str, text: &str, page: &Exposition, records: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let (selectors, recorded) = references(text);
    for r in recorded.difference(records) {
        out.push(format!(
            "{file}: recording rule {r} is not defined in {RECORDING}"
        ));
    }
    for s in &selectors {
        let Some(sets) = page.samples.get(&s.metric) else {
            out.push(format!("{file}: metric {} is not exported", s.metric));
            continue;
        };
        for (label, op, value) in &s.matchers {
            if TARGET_LABELS.contains(&label.as_str()) {
                continue;
            }
            let values: BTreeSet<&str> = sets
                .iter()
                .filter_map(|l| l.get(label).map(String::as_str))
                .collect();
            if values.is_empty() {
                out.push(format!("{file}: {} has no label {label}", s.metric));
                continue;
            }
            if CONFIGURED_LABELS.contains(&label.as_str()) {
                continue;
            }
            let real = |v: &str| {
                values.contains(v)
                    || SITUATIONAL_VALUES.contains(&(s.metric.as_str(), label.as_str(), v))
            };
            let wanted: Vec<&str> = match op {
                Op::Eq | Op::Ne => vec![value.as_str()],
                // A plain alternation of names is checked name by name; other regexes are not.
                Op::Re | Op::NotRe
                    if value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '|') =>
                {
                    value.split('|').collect()
                }
                Op::Re | Op::NotRe => Vec::new(),
            };
            for v in wanted.into_iter().filter(|v| !real(v)) {
                out.push(format!(
                    "{file}: {}{{{label}}} never has the value {v:?} (it has {values:?})",
                    s.metric
                ));
            }
        }
    }
    out
}

/// Every string in a JSON document, so each expression, legend and description is scanned.
fn json_strings(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| json_strings(x, out)),
        _ => {}
    }
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&repo_file(DASHBOARD)).expect("the dashboard is valid JSON")
}

#[test]
fn rules_tests_and_dashboard_use_only_what_the_running_daemon_exports() {
    let port = free_tcp_port();
    let d = Daemon::start(DaemonArgs {
        args: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        // A listener thread pinned to a CPU, so the pinned-listener family has a series.
        config: Some("[performance.cpu]\naffinity = [0]\n".into()),
        ..DaemonArgs::default()
    });
    // The kernel's per-listener line is read from /proc at scrape time: wait until it is there.
    let listener = format!(
        "tftpd_kernel_listener_drops_total{{listen=\"{}\"}} ",
        d.addr()
    );
    let page = Exposition::parse(&wait_for_metrics(
        port,
        &["HTTP/1.1 200 OK", "tftpd_build_info{", &listener],
        METRICS_TIMEOUT,
    ));
    let records = defined_records(&repo_file(RECORDING));
    assert!(!records.is_empty(), "{RECORDING} defines recording rules");

    let mut dash_text = String::new();
    json_strings(&dashboard(), &mut dash_text);
    let mut found = Vec::new();
    for file in [ALERTS, RECORDING, RULE_TESTS] {
        found.extend(problems(file, &repo_file(file), &page, &records));
    }
    found.extend(problems(DASHBOARD, &dash_text, &page, &records));
    assert!(
        found.is_empty(),
        "names the daemon does not export:\n  {}",
        found.join("\n  ")
    );

    // The dashboard shows every family (a histogram through its _bucket series).
    let (selectors, _) = references(&dash_text);
    let used: BTreeSet<&str> = selectors.iter().map(|s| s.metric.as_str()).collect();
    let unshown: Vec<&String> = page
        .families
        .iter()
        .filter(|(name, kind)| {
            let sample = if *kind == "histogram" {
                format!("{name}_bucket")
            } else {
                name.to_string()
            };
            !used.contains(sample.as_str())
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        unshown.is_empty(),
        "{DASHBOARD} has no panel for {unshown:?}: add one (and maybe an alert)"
    );
    // Every alert in alerts.yml is exercised by the promtool tests.
    let tests = repo_file(RULE_TESTS);
    for alert in repo_file(ALERTS)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
    {
        let alert = alert.trim();
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{RULE_TESTS} has no test for {alert}"
        );
    }
}

#[test]
fn the_checker_reports_unknown_metrics_labels_values_and_records() {
    let page = Exposition::parse(
        "# TYPE tftpd_requests_total counter\n\
         tftpd_requests_total{kind=\"read\",outcome=\"completed\"} 3\n\
         tftpd_requests_total{kind=\"read\",outcome=\"busy\"} 0\n\
         # TYPE tftpd_filter_packets_total counter\n\
         tftpd_filter_packets_total{path=\"userspace\",verdict=\"drop\",reason=\"too_short\"} 0\n",
    );
    let records = BTreeSet::from(["instance:tftpd_requests:rate5m".to_string()]);
    let good = "sum by (instance) (rate(tftpd_requests_total{instance=~\"$instance\", \
                outcome!~\"completed|busy\"}[5m])) + instance:tftpd_requests:rate5m \
                + tftpd_filter_packets_total{path=\"socket\",verdict='drop'}";
    assert_eq!(
        problems("good", good, &page, &records),
        Vec::<String>::new()
    );
    let bad = "rate(tftpd_request_total[5m]) + tftpd_requests_total{outcome=\"complete\"} \
               + tftpd_requests_total{kind=~\"read|wirte\"} + tftpd_requests_total{code=\"1\"} \
               + job:tftpd_requests:rate1h";
    let found = problems("bad", bad, &page, &records);
    for needle in [
        "metric tftpd_request_total is not exported",
        "never has the value \"complete\"",
        "never has the value \"wirte\"",
        "has no label code",
        "recording rule job:tftpd_requests:rate1h is not defined",
    ] {
        assert!(
            found.iter().any(|p| p.contains(needle)),
            "{needle:?} not reported; reported: {found:#?}"
        );
    }
    assert_eq!(found.len(), 5, "one report per mistake: {found:#?}");
}

#[test]
fn dashboard_panels_have_unique_ids_grid_places_and_queries() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion of a current Grafana"
    );
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "a uid");
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| vars.iter().find(|v| v["name"] == name);
    assert_eq!(
        var("DS_PROMETHEUS").map(|v| &v["type"]),
        Some(&serde_json::json!("datasource")),
        "a DS_PROMETHEUS data-source variable"
    );
    assert!(
        var("instance").is_some_and(|v| v["datasource"]["uid"] == "${DS_PROMETHEUS}"),
        "an instance variable querying DS_PROMETHEUS"
    );

    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
    for p in panels {
        let title = p["title"]
            .as_str()
            .expect("every panel has a title")
            .to_string();
        let id = p["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{title}: numeric id"));
        assert!(ids.insert(id), "{title}: panel id {id} is used twice");
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        assert!(
            w > 0 && h > 0 && x + w <= 24,
            "{title}: gridPos {g} off the 24-column grid"
        );
        for (other, [ox, oy, ow, oh]) in &boxes {
            let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
            assert!(!overlap, "{title} overlaps {other}");
        }
        boxes.push((title.clone(), [x, y, w, h]));
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{title}: panel data source is the variable"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "{title}: a target without expr");
            assert!(
                expr.contains("instance=~\"$instance\""),
                "{title}: {expr} ignores the instance variable"
            );
            let r = t["refId"].as_str().expect("refId");
            assert!(refs.insert(r), "{title}: refId {r} twice");
        }
    }
    assert!(repo_path(DASHBOARD).is_file());
}
