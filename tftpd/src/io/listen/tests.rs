//! Listen socket tests: recvmmsg reads a burst back as the portable path does, over loopback.

use super::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// What a listener made of one datagram, with the listener's own port taken out.
type Seen = (usize, SocketAddr, std::net::IpAddr, Vec<u8>);

/// Sends `burst` (client index, payload) to `to` from `clients`, then reads it back with
/// `mode`, and returns what arrived and the most datagrams one call returned.
async fn receive(
    listener: &ListenSocket,
    clients: &[std::net::UdpSocket],
    burst: &[(usize, Vec<u8>)],
    mode: RecvMode,
) -> (Vec<Seen>, usize) {
    let port = listener.local_addr().port();
    for (c, payload) in burst {
        let to = match clients[*c].local_addr().expect("client addr") {
            SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
        };
        clients[*c].send_to(payload, to).expect("send");
    }
    let mut bufs = RecvBuffers::default();
    let mut seen = Vec::new();
    let mut most = 0;
    while seen.len() < burst.len() {
        let n = tokio::time::timeout(WAIT, listener.recv_batch(&mut bufs, mode))
            .await
            .expect("the burst arrives in time")
            .expect("receive");
        most = most.max(n);
        for i in 0..n {
            let (r, d) = bufs.get(i).expect("a datagram per index");
            assert_eq!(r.local.port(), port, "the destination keeps the port");
            seen.push((r.len, r.peer, r.local.ip(), d.to_vec()));
        }
    }
    (seen, most)
}

fn burst(clients: usize) -> Vec<(usize, Vec<u8>)> {
    // Requests of every shape: empty, tiny, typical, and over any max_request_size (which
    // the listener then refuses as too large, so it must arrive whole).
    let sizes = [0usize, 2, 30, 516, 1500, 65000, 9, 4];
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (
                i % clients,
                (0..n).map(|b| (b * 7 + i) as u8).collect::<Vec<u8>>(),
            )
        })
        .collect()
}

async fn same_as_portable(bind: &str, clients: Vec<std::net::UdpSocket>) {
    let listen = |_| {
        let s = crate::io::socket::bind_listener(bind.parse().expect("addr")).expect("bind");
        ListenSocket::new(s).expect("listen socket")
    };
    let (portable, fast) = (listen(0), listen(1));
    let burst = burst(clients.len());
    let (want, _) = receive(&portable, &clients, &burst, RecvMode::Single).await;
    let (got, most) = receive(
        &fast,
        &clients,
        &burst,
        RecvMode::Mmsg {
            batch: 3,
            huge_pages: false,
        },
    )
    .await;
    assert_eq!(got.len(), burst.len(), "every datagram of the burst");
    assert_eq!(got, want, "recvmmsg reports what the portable path does");
    if cfg!(linux) {
        assert!(most > 1, "a queued burst is taken several per call");
        assert!(most <= 3, "never more than the batch: {most}");
    }
    // Nothing else was queued.
    let lens: Vec<usize> = got.iter().map(|s| s.0).collect();
    let sent: Vec<usize> = burst.iter().map(|(_, p)| p.len()).collect();
    assert_eq!(lens, sent, "lengths in order");
}

#[tokio::test]
async fn recvmmsg_receives_a_burst_as_the_portable_path_does_ipv4() {
    let clients = (0..3)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("client"))
        .collect();
    same_as_portable("0.0.0.0:0", clients).await;
}

#[tokio::test]
async fn recvmmsg_receives_a_mixed_family_burst_on_a_dual_stack_listener() {
    // IPv4 (v4-mapped) and IPv6 alternate, and with a batch of 3 a slot holds IPv4 in one
    // call and IPv6 in the next: each must come out as its own family's destination.
    let Ok(v6) = std::net::UdpSocket::bind("[::1]:0") else {
        eprintln!("skipping: no IPv6 loopback");
        return;
    };
    let clients = vec![
        std::net::UdpSocket::bind("127.0.0.1:0").expect("v4 client"),
        v6,
    ];
    same_as_portable("[::]:0", clients).await;
}

#[tokio::test]
async fn recvmmsg_on_a_specific_address_reports_that_address() {
    let clients = vec![std::net::UdpSocket::bind("127.0.0.1:0").expect("client")];
    same_as_portable("127.0.0.1:0", clients).await;
}
