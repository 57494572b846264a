//! `[performance.memory]` (Linux): where packet buffers live.

use serde::Deserialize;

/// `[performance.memory]` (Linux): where packet buffers live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The listeners' `recvmmsg` slots on a huge page: reserved (`MAP_HUGETLB`) when
    /// `vm.nr_hugepages` has one free, else transparent (`MADV_HUGEPAGE`), else ordinary.
    #[serde(default)]
    pub huge_pages: bool,
    /// On a host with several NUMA nodes, a listener thread pinned to a CPU places its
    /// memory on that CPU's node (Linux); with one node, nothing to do (a start-up line).
    #[serde(default = "default_numa")]
    pub numa: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            huge_pages: false,
            numa: default_numa(),
        }
    }
}

fn default_numa() -> bool {
    true
}
