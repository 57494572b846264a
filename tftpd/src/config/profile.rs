//! `[performance] profile`: named presets. A profile is a TOML document laid under the
//! file's own tables, so every key the file sets wins over the profile, and a profile is
//! read by the same parser (and checked by the same validation) as the file itself. Most
//! set `[performance.*]` keys; `secure` also sets the defences of `[limits]`, `[protocol]`
//! and `[ebpf]` for a box on the open internet.

use serde::Deserialize;

/// A preset of the fast-path keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The built-in defaults: the fast paths that measured as wins here, nothing risky.
    #[default]
    Balanced,
    /// Balanced, with more memory for speed: a larger hot-file cache, more read-ahead,
    /// larger socket buffers, more transfer threads.
    Performance,
    /// Every fast path on, those measured as losses on loopback too (they may win on a real
    /// NIC or a larger machine), with real-time scheduling and locked memory. Measure before
    /// keeping it.
    Maximum,
    /// For a box on the open internet: every knob with a security or stability cost off
    /// (no `SO_REUSEPORT` group another process of the same user could join, no `recvmmsg`
    /// (`recv_batch = 1`), no huge pages, no real-time scheduling or locked memory), and
    /// tighter defences: no retransmission to a client that has not answered, a smaller
    /// reflection budget, a shorter client timeout and transfer limit, and the XDP rate
    /// limit wherever XDP attaches.
    Secure,
}

impl Profile {
    /// The profile's name as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Balanced => "balanced",
            Self::Performance => "performance",
            Self::Maximum => "maximum",
            Self::Secure => "secure",
        }
    }

    /// The keys the profile sets, as a TOML document.
    pub fn preset(self) -> &'static str {
        match self {
            Self::Balanced => "",
            Self::Performance => PERFORMANCE,
            Self::Maximum => MAXIMUM,
            Self::Secure => SECURE,
        }
    }
}

const PERFORMANCE: &str = r#"
[performance.socket]
recv_buffer = 8388608
send_buffer = 4194304

[performance.file_io]
cache_size = 268435456
cache_max_file = 67108864
read_ahead = 262144
"#;

const MAXIMUM: &str = r#"
[performance.batching]
gso = true
recv_batch = 32

[performance.socket]
recv_buffer = 8388608
send_buffer = 4194304
reuseport_workers = 0

[performance.file_io]
cache_size = 268435456
cache_max_file = 67108864
read_ahead = 262144
fadvise = true

[performance.memory]
huge_pages = true

[performance.realtime]
priority = 10
lock_memory = true
"#;

/// Each value is documented, with what it costs, in docs/security.md ("profile = secure").
const SECURE: &str = r#"
[limits]
# A request nobody answers earns its source one datagram (13x at IP level, against 26x);
# a real client whose first datagram is lost asks again.
half_open_retries = 0
half_open_rate = 16384
half_open_burst = 262144
max_half_open = 512
max_transfer_secs = 1800

[protocol]
max_client_timeout_secs = 3

[ebpf]
# Only where XDP attaches (ebpf.xdp_interfaces); elsewhere nothing enforces it.
xdp_rate_limit = 50
xdp_rate_burst = 100

[performance.batching]
recv_batch = 1

[performance.socket]
reuseport_workers = 1

[performance.memory]
huge_pages = false

[performance.realtime]
priority = 0
lock_memory = false
"#;

/// Lays `profile`'s preset under the parsed file `file`: keys the file sets stay as they
/// are, the rest come from the preset.
pub(super) fn apply(file: &mut toml::Table, profile: Profile) -> Result<(), toml::de::Error> {
    let mut preset: toml::Table = toml::from_str(profile.preset())?;
    old_recvmmsg_wins(file, &mut preset);
    merge_under(file, preset);
    Ok(())
}

/// A file's deprecated `performance.batching.recvmmsg` is its say on `recv_batch` (the two
/// are folded into `recv_batch` after this merge), so a preset's `recv_batch` must not
/// override it: an old file's `recvmmsg = true` under `secure` keeps its 32 slots.
fn old_recvmmsg_wins(file: &toml::Table, preset: &mut toml::Table) {
    let sets_old_key = file
        .get("performance")
        .and_then(|p| p.get("batching"))
        .is_some_and(|b| b.get("recvmmsg").is_some());
    if !sets_old_key {
        return;
    }
    if let Some(b) = preset
        .get_mut("performance")
        .and_then(|p| p.get_mut("batching"))
        .and_then(toml::Value::as_table_mut)
    {
        b.remove("recv_batch");
    }
}

/// Adds to `over` every key of `under` it lacks, table by table.
fn merge_under(over: &mut toml::Table, under: toml::Table) {
    for (key, value) in under {
        match (over.get_mut(&key), value) {
            (Some(toml::Value::Table(o)), toml::Value::Table(u)) => merge_under(o, u),
            (Some(_), _) => {}
            (None, v) => {
                over.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_win_over_the_preset_and_the_rest_is_filled_in() {
        let mut file: toml::Table = toml::from_str(
            "[performance]\nprofile = \"maximum\"\n[performance.file_io]\nfadvise = false\n",
        )
        .expect("toml");
        apply(&mut file, Profile::Maximum).expect("preset");
        let p = &file["performance"];
        assert_eq!(
            p["file_io"]["fadvise"].as_bool(),
            Some(false),
            "the file's key wins"
        );
        assert_eq!(
            p["file_io"]["cache_size"].as_integer(),
            Some(268_435_456),
            "the preset fills in the rest of a table the file sets"
        );
        assert_eq!(
            p["batching"]["recv_batch"].as_integer(),
            Some(32),
            "the preset fills in"
        );
        assert_eq!(p["profile"].as_str(), Some("maximum"));
    }

    #[test]
    fn every_preset_parses() {
        for p in [
            Profile::Balanced,
            Profile::Performance,
            Profile::Maximum,
            Profile::Secure,
        ] {
            let t: Result<toml::Table, _> = toml::from_str(p.preset());
            assert!(t.is_ok(), "{}: {t:?}", p.name());
        }
    }
}

#[cfg(test)]
mod secure_tests {
    use super::super::Config;

    #[test]
    fn secure_differs_from_balanced_in_the_defences_and_file_keys_still_win() {
        let balanced = Config::from_toml_str("", None).expect("defaults");
        let secure = Config::from_toml_str("[performance]\nprofile = \"secure\"\n", None)
            .expect("the secure preset validates");
        assert_ne!(secure.limits, balanced.limits, "secure tightens [limits]");
        assert_eq!(secure.limits.half_open_retries, 0);
        assert_eq!(secure.limits.half_open_rate, 16384);
        assert_eq!(secure.protocol.max_client_timeout_secs, 3);
        assert_eq!(secure.ebpf.xdp_rate_limit, 50);
        assert_eq!(secure.performance.batching.recv_batch, 1, "no recvmmsg");
        let mine = Config::from_toml_str(
            "[performance]\nprofile = \"secure\"\n[limits]\nhalf_open_retries = 2\n",
            None,
        )
        .expect("valid");
        assert_eq!(mine.limits.half_open_retries, 2, "the file's key wins");
        assert_eq!(
            mine.limits.half_open_rate, 16384,
            "the preset fills the rest"
        );
    }
}
