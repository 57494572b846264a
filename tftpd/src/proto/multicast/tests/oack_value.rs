//! The `multicast` option's OACK value (address, port, master flag) and the block count.

use proptest::prelude::*;

use super::*;

#[test]
fn oack_value_is_addr_port_mc() {
    assert_eq!(oack_value(GROUP, 1758, true), "239.255.0.1,1758,1");
    assert_eq!(
        parse_oack_value("239.255.0.1,1758,0"),
        Some((GROUP, 1758, false))
    );
    for bad in [
        "",
        "239.255.0.1",
        "239.255.0.1,1758",
        "x,1,1",
        "239.255.0.1,1,2",
        "a,b,c,d",
    ] {
        assert_eq!(parse_oack_value(bad), None, "{bad:?} is malformed");
    }
    assert_eq!(block_count(0, 512), 1, "an empty file is one empty block");
    assert_eq!(
        block_count(512, 512),
        2,
        "a full last block is followed by an empty one"
    );
    assert_eq!(block_count(513, 512), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn oack_value_round_trips(a: [u8; 4], port: u16, master: bool) {
        let addr = Ipv4Addr::from(a);
        prop_assert_eq!(parse_oack_value(&oack_value(addr, port, master)), Some((addr, port, master)));
    }
}
