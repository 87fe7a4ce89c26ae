//! `s3bgu serve --listen 0.0.0.0:PORT` for a phone: it prints the LAN URL
//! and the app's setConfig, its store listens on a fixed port, and an upload
//! through this machine's non-loopback address completes. (A client in
//! another network namespace: scripts/phone-reach.sh.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_s3bgu");

/// A port free on every interface: bound, then released.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn serve_on_every_interface_advertises_the_lan_address_and_a_fixed_store_port() {
    let lan = s3bgu_backend::lan_address()
        .expect("this test needs a non-loopback IPv4 address with a route (none found)");
    let dir = tempfile::tempdir().unwrap();
    let store_port = free_port();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0", "--store", "st"])
        .args(["--store-port", &store_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let end = line.trim() == "});";
        lines.push(line.trim_end().to_owned());
        if end {
            break;
        }
    }
    let mut err_line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut err_line)
        .unwrap();
    let text = lines.join("\n");
    let base = lines[0]
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {text}"))
        .to_owned();
    assert!(base.starts_with(&format!("http://{lan}:")), "{text}");
    for route in ["startUpload", "getUploadUrls", "complete", "abort"] {
        assert!(text.contains(&format!("'{base}/{route}'")), "{text}");
    }
    assert!(
        err_line.starts_with(&format!("s3 store at http://127.0.0.1:{store_port}")),
        "{err_line}"
    );

    // An upload through the LAN address: part URLs name it too.
    let data: Vec<u8> = (0..6 * 1024 * 1024 + 5)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("lan.bin"), &data).unwrap();
    let up = Command::new(BIN)
        .current_dir(dir.path())
        .args(["upload", "lan.bin", "--backend", &base, "--json"])
        .env("S3BGU_LOG", "s3bgu_core=debug")
        .output()
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let log = String::from_utf8_lossy(&up.stderr);
    assert!(up.status.success(), "{log}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&up.stdout).trim()).unwrap();
    let key = v["uploads"][0]["key"].as_str().unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("st/uploads").join(key)).unwrap(),
        data
    );
    // The engine logs each part's URL without its query: its host is the
    // LAN address and the fixed store port, not the server's loopback.
    let to = format!("url=http://{lan}:{store_port}/");
    assert!(
        log.lines()
            .filter(|l| l.contains("part upload starts"))
            .all(|l| l.contains(&to)),
        "{log}"
    );
    assert!(log.contains("part upload starts"), "{log}");
}
