//! Fuzzes the metrics endpoint's request parser: any bytes a connection sends parse to a
//! request or an error, never a panic; "incomplete" is only said below the head limit; every
//! other error has a status to answer with; and bytes after a complete head (a pipelined
//! second request) never change what the first one asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftpd::metrics::request::{HttpError, MAX_HEAD, parse_request};

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Err(HttpError::Incomplete) => {
            assert!(
                data.len() < MAX_HEAD,
                "incomplete only below the head limit"
            );
        }
        Err(e) => assert!(e.status().is_some(), "{e:?} is answered"),
        Ok(request) => {
            let mut more = data.to_vec();
            more.extend_from_slice(b"POST /x HTTP/1.1\r\n\r\n");
            assert_eq!(
                parse_request(&more),
                Ok(request),
                "only the first head counts"
            );
        }
    }
});
