//! `write`: whether uploads are allowed, and whether they may replace files (the config and
//! CLI value, parsed once).

/// Whether uploads are allowed, and whether they may replace files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// No uploads (the default).
    #[default]
    Off,
    /// Uploads may create new files but never replace one.
    Create,
    /// Uploads may create files and replace existing ones.
    Overwrite,
}

impl WriteMode {
    /// The config and CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Create => "create",
            Self::Overwrite => "overwrite",
        }
    }
}

impl std::str::FromStr for WriteMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "create" => Ok(Self::Create),
            "overwrite" => Ok(Self::Overwrite),
            other => Err(format!(
                "invalid write mode {other:?} (allowed: off, create, overwrite)"
            )),
        }
    }
}
