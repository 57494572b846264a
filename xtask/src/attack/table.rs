//! The suite's output: one Markdown row per attack, and the progress line printed while it
//! runs (row i of n, and the time left estimated from what the rows so far took).

use std::time::Duration;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) attack: String,
    pub(crate) sent: String,
    pub(crate) server: String,
    pub(crate) legit: String,
    pub(crate) ratio: String,
}

pub(crate) const HEADER: &str = "| attack | what was sent | what the server did | legitimate clients served | bytes out per byte in (IP level) |\n|---|---|---|---|---|";

impl Row {
    /// The row as a Markdown table line (a `|` inside a cell is escaped).
    pub(crate) fn markdown(&self) -> String {
        let cells = [
            &self.attack,
            &self.sent,
            &self.server,
            &self.legit,
            &self.ratio,
        ];
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |", cells.join(" | "))
    }
}

/// A ratio as the table prints it: "78.6×", or "n/a".
pub(crate) fn times(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.1}×"),
        None => "n/a".into(),
    }
}

/// How far the pace of the rows so far may scale the estimate of the rest: one quick row
/// says little about a machine's speed.
const PACE: std::ops::RangeInclusive<f64> = 0.5..=3.0;

/// The progress line before row `i` (from 0) of `estimates.len()`: the rows left, at the
/// pace the rows so far kept against their estimates.
pub(crate) fn progress(i: usize, name: &str, estimates: &[Duration], spent: Duration) -> String {
    let planned_done: Duration = estimates[..i].iter().sum();
    let pace = if planned_done.is_zero() {
        1.0
    } else {
        (spent.as_secs_f64() / planned_done.as_secs_f64()).clamp(*PACE.start(), *PACE.end())
    };
    let left: Duration = estimates[i..].iter().sum();
    let left = left.as_secs_f64() * pace;
    format!(
        "xtask attack: row {} of {}: {name} (about {} left)",
        i + 1,
        estimates.len(),
        super::time_left::minutes(left)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_scales_the_estimate_by_the_pace_so_far() {
        let est = [
            Duration::from_secs(10),
            Duration::from_secs(20),
            Duration::from_secs(30),
        ];
        assert_eq!(
            progress(0, "a", &est, Duration::ZERO),
            "xtask attack: row 1 of 3: a (about 1 min 00 s left)"
        );
        // The first row took twice its estimate: the 50 s left are expected to take 100.
        assert_eq!(
            progress(1, "b", &est, Duration::from_secs(20)),
            "xtask attack: row 2 of 3: b (about 1 min 40 s left)"
        );
        // A row far quicker than planned halves the rest at most.
        assert_eq!(
            progress(1, "b", &est, Duration::from_secs(1)),
            "xtask attack: row 2 of 3: b (about 25 s left)"
        );
    }

    #[test]
    fn cells_cannot_break_the_table() {
        let r = Row {
            attack: "a|b".into(),
            sent: "s".into(),
            server: "d".into(),
            legit: "l".into(),
            ratio: times(Some(78.64)),
        };
        assert_eq!(r.markdown(), "| a\\|b | s | d | l | 78.6× |");
        assert_eq!(times(None), "n/a");
        assert_eq!(times(Some(2841.2)), "2841×");
    }
}
