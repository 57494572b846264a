//! `performance.batching.recv_batch` as the one listener-receive choice: 1 is one datagram
//! per call, 2 and up is `recvmmsg`; the deprecated `recvmmsg` key folded into it; the keys
//! that depend on it (`memory.huge_pages`, `performance.io`).

use super::Config;
use crate::fastpath::Support;
use crate::metrics::build_info::IoPath;

const EVERY_PATH: Support = Support {
    gso: true,
    recvmmsg: true,
    fadvise: true,
};

fn load(toml: &str) -> Config {
    Config::from_toml_str(toml, None).unwrap_or_else(|e| panic!("{toml:?} must load: {e}"))
}

/// Whether the listeners would read with `recvmmsg` on a kernel that has it.
fn listener_recvmmsg(c: &Config) -> bool {
    IoPath::chosen(&c.performance, EVERY_PATH).recvmmsg
}

#[test]
fn recv_batch_1_turns_recvmmsg_off_and_2_turns_it_on() {
    let one = load("[performance.batching]\nrecv_batch = 1\n");
    assert!(!one.performance.batching.listener_recvmmsg());
    assert!(
        !listener_recvmmsg(&one),
        "not in tftpd_build_info's io_path"
    );
    assert_eq!(
        one,
        Config::default(),
        "1 is the default: recvmmsg stays off"
    );
    assert!(one.warnings().is_empty(), "{:?}", one.warnings());
    let two = load("[performance.batching]\nrecv_batch = 2\n");
    assert!(listener_recvmmsg(&two));
    assert!(
        IoPath::chosen(&two.performance, EVERY_PATH)
            .label()
            .starts_with("recvmmsg+"),
        "io_path still names recvmmsg"
    );
    let no_kernel = Support {
        recvmmsg: false,
        ..EVERY_PATH
    };
    assert!(
        !IoPath::chosen(&two.performance, no_kernel).recvmmsg,
        "asked for, but the kernel lacks it"
    );
}

#[test]
fn old_recvmmsg_false_loads_as_recv_batch_1_and_names_the_replacement() {
    let c = load("[performance.batching]\nrecvmmsg = false\nrecv_batch = 64\n");
    assert_eq!(
        c.performance.batching.recv_batch, 1,
        "recvmmsg = false wins over recv_batch, as it did"
    );
    assert!(!listener_recvmmsg(&c));
    let said = c.warnings();
    assert_eq!(said.len(), 1, "{said:?}");
    let w = &said[0];
    assert!(
        w.starts_with("performance.batching.recvmmsg (false) is deprecated")
            && w.contains("performance.batching.recv_batch = 1")
            && w.ends_with("delete it"),
        "{w}"
    );
}

#[test]
fn old_recvmmsg_true_keeps_its_slots() {
    let c = load("[performance.batching]\nrecvmmsg = true\n");
    assert_eq!(
        c.performance.batching.recv_batch, 32,
        "the old default batch"
    );
    assert!(listener_recvmmsg(&c));
    let said = c.warnings();
    assert!(
        said.len() == 1 && said[0].contains("deprecated") && said[0].contains("recv_batch"),
        "{said:?}"
    );
    let c = load("[performance.batching]\nrecvmmsg = true\nrecv_batch = 8\n");
    assert_eq!(
        c.performance.batching.recv_batch, 8,
        "recv_batch as it says"
    );
    // A preset's recv_batch does not override the file's old key: secure sets 1.
    let c = load("[performance]\nprofile = \"secure\"\n[performance.batching]\nrecvmmsg = true\n");
    assert_eq!(c.performance.batching.recv_batch, 32);
    let c = load(
        "[performance]\nprofile = \"maximum\"\n[performance.batching]\nrecvmmsg = false\n\
                  [performance.memory]\nhuge_pages = false\n",
    );
    assert_eq!(c.performance.batching.recv_batch, 1);
}

#[test]
fn huge_pages_with_recv_batch_1_is_refused_naming_recv_batch() {
    for toml in [
        "[performance.memory]\nhuge_pages = true\n",
        "[performance.batching]\nrecv_batch = 1\n[performance.memory]\nhuge_pages = true\n",
        "[performance.batching]\nrecvmmsg = false\nrecv_batch = 32\n\
         [performance.memory]\nhuge_pages = true\n",
    ] {
        let e = Config::from_toml_str(toml, None)
            .expect_err("the huge page holds recvmmsg's slots")
            .to_string();
        assert!(
            e.contains("performance.memory.huge_pages")
                && e.contains("performance.batching.recv_batch >= 2")
                && !e.contains("recvmmsg = true"),
            "{toml:?}: {e}"
        );
    }
    #[cfg(linux)]
    load("[performance.batching]\nrecv_batch = 32\n[performance.memory]\nhuge_pages = true\n");
}

#[test]
fn io_portable_sets_recv_batch_to_1() {
    for batching in [
        "recv_batch = 64",
        "recvmmsg = true",
        "recvmmsg = true\nrecv_batch = 8",
    ] {
        let c = load(&format!(
            "[performance]\nio = \"portable\"\n[performance.batching]\n{batching}\n"
        ));
        assert_eq!(c.performance.batching.recv_batch, 1, "{batching}");
        assert!(!listener_recvmmsg(&c), "{batching}");
    }
    assert!(
        super::PORTABLE_TURNS_OFF.contains(&"performance.batching.recv_batch = 1"),
        "the start-up line says so"
    );
}
