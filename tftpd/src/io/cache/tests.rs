//! Hot-file cache tests: hits, one loader per version, changed files served new, eviction.

use super::*;
use std::io::Write as _;

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write test file");
}

/// A lookup that runs its own load at once, as a caller that waits would.
fn get(cache: &Arc<FileCache>, path: &std::path::Path) -> Option<Vec<u8>> {
    let f = File::open(path).expect("open");
    match cache.lookup(&f).expect("lookup") {
        Lookup::Hit(b) => Some(b.to_vec()),
        Lookup::Load(l) => l.run().expect("load").map(|b| b.to_vec()),
        Lookup::Miss | Lookup::Bypass => None,
    }
}

#[test]
fn second_lookup_is_a_hit_with_the_same_bytes() {
    let dir = crate::fs::testdir_for_config();
    let p = dir.path().join("a");
    write(&p, b"boot image");
    let c = Arc::new(FileCache::default());
    c.configure(1 << 20, 1 << 20);
    assert_eq!(get(&c, &p).as_deref(), Some(&b"boot image"[..]));
    assert_eq!(get(&c, &p).as_deref(), Some(&b"boot image"[..]));
    let n = c.counts();
    assert_eq!((n.hits, n.misses, n.bytes), (1, 1, 10), "{n:?}");
}

#[test]
fn a_hit_by_key_counts_only_hits_and_keys_from_fstat_match_the_files() {
    let dir = crate::fs::testdir_for_config();
    let p = dir.path().join("a");
    write(&p, b"initrd");
    let f = File::open(&p).expect("open");
    let key = FileKey::from_stat(&nix::sys::stat::fstat(&f).expect("fstat"));
    assert_eq!(
        key,
        FileKey::of(&f).expect("key"),
        "the same key either way"
    );
    let c = Arc::new(FileCache::default());
    c.configure(1 << 20, 1 << 20);
    assert!(c.hit(&key).is_none(), "empty");
    assert_eq!(
        c.counts().misses,
        0,
        "a miss by key is left for the lookup to count"
    );
    assert_eq!(get(&c, &p).as_deref(), Some(&b"initrd"[..]));
    assert_eq!(c.hit(&key).as_deref(), Some(&b"initrd"[..]));
    let n = c.counts();
    assert_eq!((n.hits, n.misses), (1, 1), "{n:?}");
    write(&p, b"initrd v2");
    let newer = FileKey::of(&File::open(&p).expect("open")).expect("key");
    assert!(c.hit(&newer).is_none(), "a changed file is not a hit");
}

#[test]
fn one_loader_per_version_and_a_dropped_one_frees_its_mark() {
    let dir = crate::fs::testdir_for_config();
    let p = dir.path().join("a");
    write(&p, b"kernel");
    let c = Arc::new(FileCache::default());
    c.configure(1 << 20, 1 << 20);
    let lookup = || c.lookup(&File::open(&p).expect("open")).expect("lookup");
    let Lookup::Load(first) = lookup() else {
        panic!("the first miss loads");
    };
    assert_eq!(first.size(), 6);
    assert!(
        matches!(lookup(), Lookup::Miss),
        "a second transfer reads the file instead of loading it again"
    );
    drop(first);
    let Lookup::Load(again) = lookup() else {
        panic!("an abandoned load does not block the next one");
    };
    // Run elsewhere, as the daemon does: the transfers after it hit.
    let loaded = std::thread::spawn(move || again.run())
        .join()
        .expect("join")
        .expect("load");
    assert_eq!(loaded.as_deref(), Some(&b"kernel"[..]));
    assert!(matches!(lookup(), Lookup::Hit(b) if &b[..] == b"kernel"));
    let n = c.counts();
    assert_eq!((n.hits, n.misses, n.bytes), (1, 3, 6), "{n:?}");
}

#[test]
fn a_file_rewritten_in_place_is_served_new() {
    let dir = crate::fs::testdir_for_config();
    let p = dir.path().join("a");
    write(&p, b"version one");
    let c = Arc::new(FileCache::default());
    c.configure(1 << 20, 1 << 20);
    assert_eq!(get(&c, &p).as_deref(), Some(&b"version one"[..]));
    // Same size, same inode: only the timestamps tell (truncate + write in place).
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .expect("open for rewrite");
    f.write_all(b"version two").expect("rewrite");
    drop(f);
    assert_eq!(get(&c, &p).as_deref(), Some(&b"version two"[..]));
    assert_eq!(
        c.counts().bytes,
        11,
        "the old version was dropped, not kept"
    );
}

#[test]
fn a_file_replaced_by_rename_is_served_new() {
    let dir = crate::fs::testdir_for_config();
    let p = dir.path().join("a");
    let tmp = dir.path().join("a.new");
    write(&p, b"old contents");
    let c = Arc::new(FileCache::default());
    c.configure(1 << 20, 1 << 20);
    assert_eq!(get(&c, &p).as_deref(), Some(&b"old contents"[..]));
    write(&tmp, b"new contents");
    std::fs::rename(&tmp, &p).expect("rename over");
    assert_eq!(get(&c, &p).as_deref(), Some(&b"new contents"[..]));
    assert_eq!(c.counts().misses, 2, "the replacement was a miss");
}

#[test]
fn the_least_recently_used_file_goes_when_full() {
    let dir = crate::fs::testdir_for_config();
    let (a, b, d) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("d"),
    );
    for p in [&a, &b, &d] {
        write(p, &[7; 40]);
    }
    let c = Arc::new(FileCache::default());
    c.configure(100, 100);
    get(&c, &a);
    get(&c, &b);
    get(&c, &a); // a is now newer than b
    get(&c, &d); // 120 > 100: b goes
    assert_eq!(c.counts().bytes, 80);
    let before = c.counts().hits;
    get(&c, &a);
    assert_eq!(c.counts().hits, before + 1, "a stayed");
    get(&c, &b);
    assert_eq!(c.counts().hits, before + 1, "b was evicted");
}

#[test]
fn big_files_and_a_zero_capacity_bypass_the_cache() {
    let dir = crate::fs::testdir_for_config();
    let p = dir.path().join("a");
    write(&p, &[1; 64]);
    let c = Arc::new(FileCache::default());
    c.configure(1000, 63);
    assert_eq!(get(&c, &p), None, "over cache_max_file");
    c.configure(0, 1000);
    assert_eq!(get(&c, &p), None, "cache off");
    c.configure(1000, 1000);
    assert!(get(&c, &p).is_some());
    c.configure(0, 1000);
    assert_eq!(c.counts().bytes, 0, "turning it off frees the memory");
    assert_eq!(c.counts().misses, 1, "bypasses are not misses");
}
