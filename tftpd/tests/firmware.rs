//! Root-only: real boot firmware downloads from the daemon at its defaults (the adaptive
//! retransmission timer on). iPXE (Debian's `ipxe.lkrn`) boots in QEMU (software emulation,
//! so no KVM is needed) with its NIC on a tap device this test makes, and runs a script that
//! chains a second script over TFTP; that one fetches a 1 MiB image and then a file whose
//! name only the second script holds. The daemon's log must show each transfer completed:
//! the firmware acknowledged every block, and it read the chained script intact.

mod harness;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::netns::ip;
use harness::{Daemon, DaemonArgs, TempDir, is_root, pattern, random_u64, skip};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 214, 79, 1);
const FIRMWARE: Ipv4Addr = Ipv4Addr::new(10, 214, 79, 2);
const IPXE: &str = "/usr/lib/ipxe/ipxe.lkrn";
const QEMU: &str = "qemu-system-x86_64";
/// Booting iPXE under emulation takes a few seconds; a loaded CI machine, more.
const BOOT: Duration = Duration::from_secs(120);
/// Not a multiple of iPXE's blksize, so the last block is short.
const IMAGE_LEN: usize = 1_048_576 + 700;

/// A tap device with `SERVER`/24, removed on drop.
struct Tap(String);

impl Tap {
    fn new() -> Self {
        let name = format!("fwtap{}", std::process::id() % 100_000);
        // A killed run's leftover would make this one fail for no reason.
        let _ = Command::new("ip").args(["link", "del", &name]).output();
        ip(&["tuntap", "add", "dev", &name, "mode", "tap"]);
        ip(&["addr", "add", &format!("{SERVER}/24"), "dev", &name]);
        ip(&["link", "set", &name, "up"]);
        Self(name)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// QEMU running iPXE with `script` as its embedded script, killed on drop.
struct Firmware(Child);

impl Firmware {
    fn boot(tap: &Tap, script: &Path) -> Self {
        let child = Command::new(QEMU)
            .args(["-accel", "tcg", "-m", "128", "-display", "none"])
            .args(["-serial", "null", "-monitor", "none", "-no-reboot"])
            .arg("-netdev")
            .arg(format!(
                "tap,id=n0,ifname={},script=no,downscript=no",
                tap.0
            ))
            // No option ROM: ipxe.lkrn drives the NIC itself.
            .args(["-device", "virtio-net-pci,netdev=n0,romfile="])
            .args(["-kernel", IPXE, "-initrd"])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting qemu");
        Self(child)
    }

    /// True while QEMU runs; its stderr once it has exited on its own.
    fn exited(&mut self) -> Option<String> {
        let status = self.0.try_wait().expect("qemu status")?;
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        Some(format!("{status}: {err}"))
    }
}

impl Drop for Firmware {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The log line of `file`'s finished transfer, once there is one.
fn finished(log: &str, file: &str) -> Option<String> {
    let span = format!("file={file} ");
    log.lines()
        .find(|l| l.contains(&span) && l.contains("transfer finished"))
        .map(str::to_string)
}

#[test]
fn ipxe_chains_a_script_and_fetches_an_image_at_the_defaults() {
    let test = "ipxe_chains_a_script_and_fetches_an_image_at_the_defaults";
    if !is_root() {
        skip(test, "needs root (a tap device)");
        return;
    }
    if !Path::new(IPXE).exists() || Command::new(QEMU).arg("--version").output().is_err() {
        skip(test, "needs qemu-system-x86 and ipxe (cargo xtask setup)");
        return;
    }
    let tap = Tap::new();
    let d = Daemon::start(DaemonArgs {
        args: vec!["--listen".into(), format!("{SERVER}:0")],
        ..DaemonArgs::default()
    });
    let server: SocketAddr = *d
        .addrs()
        .iter()
        .find(|a| a.ip() == SERVER)
        .expect("the tap listener");
    let url = |file: &str| format!("tftp://{server}/{file}");
    let token = format!("token-{:016x}.bin", random_u64());
    d.put_file("image.bin", &pattern(IMAGE_LEN, 9));
    d.put_file(&token, b"the chained script was read intact\n");
    d.put_file(
        "next.ipxe",
        format!(
            "#!ipxe\nimgfetch {}\nimgfetch {}\n",
            url("image.bin"),
            url(&token)
        )
        .as_bytes(),
    );
    let scripts = TempDir::new("firmware");
    let first = scripts.path().join("boot.ipxe");
    std::fs::write(
        &first,
        format!(
            "#!ipxe\nset net0/ip {FIRMWARE}\nset net0/netmask 255.255.255.0\nifopen net0\n\
             chain {}\n",
            url("next.ipxe")
        ),
    )
    .expect("writing the boot script");

    let mut firmware = Firmware::boot(&tap, &first);
    let deadline = Instant::now() + BOOT;
    let line = loop {
        if let Some(line) = finished(&d.log(), &token) {
            break line;
        }
        if let Some(exit) = firmware.exited() {
            panic!(
                "qemu ended before the last download ({exit}); log:\n{}",
                d.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "iPXE did not fetch {token} within {BOOT:?}; log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(firmware);
    let log = d.log();
    assert!(line.contains("outcome=\"completed\""), "{line}");
    for (file, len) in [("next.ipxe", None), ("image.bin", Some(IMAGE_LEN))] {
        let done = finished(&log, file).unwrap_or_else(|| panic!("no {file} transfer:\n{log}"));
        assert!(done.contains("outcome=\"completed\""), "{file}: {done}");
        if let Some(len) = len {
            assert!(done.contains(&format!("bytes={len} ")), "{file}: {done}");
        }
    }
    // iPXE asks for blksize and tsize; the image went in blocks larger than 512.
    assert!(
        log.lines()
            .any(|l| l.contains("file=image.bin ") && l.contains("tsize=")),
        "iPXE negotiated tsize:\n{log}"
    );
}
