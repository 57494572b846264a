//! Reading pinned counter maps with the real `bpftool`, independently of the daemon.

use std::process::Command;

/// Sums one reason's counter over CPUs from `bpftool -j map dump pinned DIR/MAP`:
/// (packets, bytes).
pub(crate) fn bpftool_sum(dir: &str, map: &str, index: u64) -> (u64, u64) {
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "pinned"])
        .arg(format!("{dir}/{map}"))
        .output()
        .expect("running bpftool");
    assert!(
        out.status.success(),
        "bpftool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // The JSON is an array of {"key": N, "values": [{"cpu": C, "value": {"packets": P, "bytes": B}}]}.
    // A tiny scan keeps the tests free of a JSON dependency.
    let entry = text
        .split("\"key\":")
        .skip(1)
        .find(|e| {
            e.trim_start().starts_with(&format!("{index},"))
                || e.trim_start().starts_with(&format!("{index}\n"))
        })
        .unwrap_or_else(|| panic!("no key {index} in bpftool output:\n{text}"));
    let field_sum = |name: &str| -> u64 {
        entry
            .split(&format!("\"{name}\":"))
            .skip(1)
            .map(|v| {
                v.trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<u64>()
                    .expect("a number")
            })
            .sum()
    };
    (field_sum("packets"), field_sum("bytes"))
}
