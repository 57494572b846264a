//! `[performance] profile`: named presets of the `[performance.*]` keys. A profile is a
//! TOML table laid under the file's own `[performance]` table, so every key the file sets
//! wins over the profile, and a profile is read by the same parser (and checked by the same
//! validation) as the file itself.

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
    /// Every knob with a security or stability cost off: no `SO_REUSEPORT` group another
    /// process of the same user could join, no `MSG_ZEROCOPY` or `sendfile` (pages shared
    /// with the kernel), no io_uring (a large kernel surface many distributions disable), no
    /// `recvmmsg`, no real-time scheduling or locked memory.
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

    /// The keys the profile sets, as the body of a `[performance]` table.
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
[socket]
recv_buffer = 8388608
send_buffer = 4194304

[file_io]
cache_size = 268435456
cache_max_file = 67108864
read_ahead = 262144
"#;

const MAXIMUM: &str = r#"
[batching]
gso = true
recvmmsg = true

[socket]
recv_buffer = 8388608
send_buffer = 4194304
reuseport_workers = 0

[file_io]
cache_size = 268435456
cache_max_file = 67108864
read_ahead = 262144
fadvise = true
sendfile = true

[zerocopy]
enabled = true

[io_uring]
enabled = true
shared_ring = true

[memory]
huge_pages = true

[realtime]
priority = 10
lock_memory = true
"#;

const SECURE: &str = r#"
[batching]
recvmmsg = false

[socket]
reuseport_workers = 1

[file_io]
sendfile = false

[zerocopy]
enabled = false

[io_uring]
enabled = false
shared_ring = false

[memory]
huge_pages = false

[realtime]
priority = 0
lock_memory = false
"#;

/// Lays `profile`'s preset under the `[performance]` table of the parsed file `file`: keys
/// the file sets stay as they are, the rest come from the preset.
pub(super) fn apply(file: &mut toml::Table, profile: Profile) -> Result<(), toml::de::Error> {
    let preset: toml::Table = toml::from_str(profile.preset())?;
    let performance = file
        .entry("performance")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = performance {
        merge_under(t, preset);
    }
    Ok(())
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
            "[performance]\nprofile = \"maximum\"\n[performance.zerocopy]\nenabled = false\n",
        )
        .expect("toml");
        apply(&mut file, Profile::Maximum).expect("preset");
        let p = &file["performance"];
        assert_eq!(
            p["zerocopy"]["enabled"].as_bool(),
            Some(false),
            "the file's key wins"
        );
        assert_eq!(p["zerocopy"].as_table().map(|t| t.len()), Some(1), "{p:?}");
        assert_eq!(
            p["batching"]["recvmmsg"].as_bool(),
            Some(true),
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
