//! The size caps: the largest upload, the bytes all uploads may hold in flight, and the
//! free-space reserve, each refused as ERROR 3.

use super::*;
use crate::proto::ErrorCode;

#[test]
fn too_large_upload_is_refused_before_writing() {
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 10);
    let mut up = root
        .create_upload(&path("big.bin"), &policy)
        .expect("create");
    up.write(b"0123456789").expect("exactly the limit");
    let err = up.write(b"x").expect_err("over the limit");
    assert!(
        matches!(err, UploadError::TooLarge { limit: 10, .. }),
        "{err}"
    );
    assert_eq!(
        err.wire_error().code,
        ErrorCode::DiskFull,
        "too large is disk full on the wire"
    );
    assert_eq!(up.written(), 10, "the refused block was not counted");
    drop(up);
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "sub"],
        "the refused upload left nothing behind"
    );
}

#[test]
fn in_flight_cap_refuses_with_error_3_and_is_released_on_drop_and_commit() {
    let count: &'static InFlight = Box::leak(Box::new(InFlight::new()));
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
    let policy = UploadPolicy {
        max_in_flight: 10,
        ..policy.counting_in(count)
    };
    let mut a = root.create_upload(&path("a.bin"), &policy).expect("a");
    a.check_room(Some(10)).expect("an announced size that fits");
    a.write(b"123456").expect("within the cap");
    assert_eq!(count.bytes(), 6, "a's bytes are in flight");
    let mut b = root.create_upload(&path("b.bin"), &policy).expect("b");
    let err = b
        .check_room(Some(5))
        .expect_err("a tsize past what is left");
    assert!(
        matches!(err, UploadError::InFlightFull { limit: 10, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("uploads.max_in_flight"), "{err}");
    let wire = err.wire_error();
    assert_eq!(wire.code, ErrorCode::DiskFull, "ERROR 3");
    assert_eq!(wire.message, "upload space in flight exhausted");
    b.check_room(None)
        .expect("without a tsize, room for some bytes is enough");
    let err = b.write(b"12345").expect_err("a block past the cap");
    assert!(matches!(err, UploadError::InFlightFull { .. }), "{err}");
    assert_eq!(count.bytes(), 6, "the refused block holds nothing");
    drop(a);
    assert_eq!(count.bytes(), 0, "a dropped upload gives its bytes back");
    b.write(b"1234567890").expect("the whole cap is free again");
    b.commit().expect("commit");
    assert_eq!(count.bytes(), 0, "a committed upload gives its bytes back");
    let mut c = root.create_upload(&path("c.bin"), &policy).expect("c");
    c.write(b"0123456789")
        .expect("the cap is free after the commit");
    drop(c);
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["b.bin", "existing.bin", "sub"],
        "only the committed upload is there"
    );
}

#[test]
fn free_space_reserve_refuses_with_error_3() {
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
    // More than any filesystem here has free.
    let policy = UploadPolicy {
        min_free_bytes: u64::MAX / 2,
        ..policy
    };
    let mut up = root.create_upload(&path("a.bin"), &policy).expect("create");
    let err = up.check_room(None).expect_err("the reserve is not there");
    assert!(matches!(err, UploadError::LowSpace { .. }), "{err}");
    assert!(err.to_string().contains("uploads.min_free_bytes"), "{err}");
    let wire = err.wire_error();
    assert_eq!(wire.code, ErrorCode::DiskFull, "ERROR 3");
    assert_eq!(wire.message, "disk free-space reserve reached");
    let mut up = root.create_upload(&path("b.bin"), &policy).expect("create");
    let err = up.write(b"x").expect_err("writing checks too");
    assert!(matches!(err, UploadError::LowSpace { .. }), "{err}");
    drop(up);
    let modest = UploadPolicy {
        min_free_bytes: 1,
        ..policy
    };
    let mut up = root.create_upload(&path("c.bin"), &modest).expect("create");
    up.check_room(Some(1)).expect("a byte of reserve is there");
    up.write(b"x").expect("write");
    up.commit().expect("commit");
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["c.bin", "existing.bin", "sub"],
        "the refused uploads left nothing"
    );
}

#[test]
fn free_space_is_looked_at_once_per_step_and_counts_what_is_announced() {
    use std::cell::Cell;
    let asked = Cell::new(0);
    let free = Cell::new(10 * space::CHECK_EVERY);
    let available = || {
        asked.set(asked.get() + 1);
        Ok(free.get())
    };
    let mut r = Reserve::new(space::CHECK_EVERY);
    assert_eq!(
        r.allows(0, 9 * space::CHECK_EVERY, available),
        Ok(true),
        "fits"
    );
    assert_eq!(
        Reserve::new(space::CHECK_EVERY).allows(0, 9 * space::CHECK_EVERY + 1, available),
        Ok(false),
        "an announced size past the reserve"
    );
    let mut r = Reserve::new(space::CHECK_EVERY);
    let mut total = 0;
    while total < 3 * space::CHECK_EVERY {
        total += 512;
        assert_eq!(r.allows(total, 0, available), Ok(true), "room at {total}");
    }
    assert_eq!(
        asked.get(),
        2 + 3,
        "one look per CHECK_EVERY bytes, not per block"
    );
    free.set(space::CHECK_EVERY - 1);
    let mut refused = false;
    for _ in 0..(space::CHECK_EVERY / 512) {
        total += 512;
        if r.allows(total, 0, available) == Ok(false) {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "the reserve trips within one step of the space going"
    );
    let mut off = Reserve::new(0);
    assert_eq!(off.allows(0, u64::MAX, available), Ok(true), "0 disables");
}
