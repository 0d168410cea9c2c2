//! A real attack tool against the built server: slowhttptest's slow headers
//! (slowloris), slow body, slow read and range modes, each for a few
//! seconds, while a signed Twilio POST of more than 1 KiB is sent again and
//! again. Every such POST must be answered while the attack still runs:
//! before the edge was fixed, 16 stalled bodies kept such POSTs waiting
//! 10 to 20 s.
//!
//! `.ci/run` installs slowhttptest. Where it is missing, the test writes
//! `SKIPPED` and the reason to the terminal and checks nothing else.

mod support;

use std::io::{BufReader, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{Binary, DEFAULT_TWIML, connect, program, read_response, signed_post, skipped};

const TOKEN: &str = "12345678901234567890123456789012";
const PUBLIC_URL: &str = "https://hooks.example.com";

/// A WhatsApp message whose form is over 1 KiB (about 105 Cyrillic
/// characters make one), so that tiny_http leaves its body on the socket.
fn long_form() -> String {
    let body: String = "Привет! ".repeat(40);
    let encoded: String = form_urlencoded::byte_serialize(body.as_bytes()).collect();
    format!(
        "MessageSid=SM{}&From=whatsapp%3A%2B15551234567&To=whatsapp%3A%2B14155238886&Body={encoded}",
        "0".repeat(32)
    )
}

/// How many connections the server holds (Linux lists them).
fn held(server: &Binary) -> usize {
    whatsapp_webhook::http::sockets::connections(server.addr.port())
        .map_or(0, |connections| connections.held())
}

#[test]
fn a_signed_post_over_1_kib_is_answered_throughout_every_slowhttptest_mode() {
    let Some(tool) = program("slowhttptest", &[]) else {
        return skipped(
            "attacks: slowhttptest against the server",
            "slowhttptest not found",
        );
    };
    let server = Binary::start(
        &[],
        &[("TWILIO_AUTH_TOKEN", TOKEN), ("PUBLIC_URL", PUBLIC_URL)],
    );
    let form = long_form();
    assert!(form.len() > 1024, "{} bytes", form.len());
    let post = signed_post(TOKEN, &format!("{PUBLIC_URL}/whatsapp"), &form);
    let target = format!("http://{}/whatsapp", server.addr);
    // Each slow mode sends its next bytes every second, within the server's
    // timeout, so that its connections stay open the whole time.
    let modes: [(&str, &[&str]); 3] = [
        ("slow headers", &["-H", "-i", "1"]),
        ("slow body", &["-B", "-i", "1", "-s", "8192"]),
        (
            "slow read",
            &["-X", "-k", "3", "-w", "1", "-y", "64", "-n", "1", "-z", "8"],
        ),
    ];
    for (mode, args) in modes {
        let mut attack = Command::new(&tool)
            .args(args)
            .args([
                "-c", "300", "-r", "150", "-l", "6", "-p", "3", "-u", &target,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slowhttptest");
        // Wait until the attack holds connections open.
        let deadline = Instant::now() + support::PATIENCE;
        while held(&server) < 100 {
            assert!(
                Instant::now() < deadline,
                "{mode}: the attack never got going"
            );
            assert!(
                attack.try_wait().expect("slowhttptest runs").is_none(),
                "{mode}: slowhttptest ended before it held 100 connections"
            );
            thread::sleep(Duration::from_millis(50));
        }
        let mut answered = 0;
        let mut slowest = Duration::ZERO;
        while attack.try_wait().expect("slowhttptest runs").is_none() {
            let started = Instant::now();
            let mut stream = connect(server.addr);
            stream.write_all(&post).unwrap();
            read_response(&mut BufReader::new(stream), false).assert_twiml(DEFAULT_TWIML);
            slowest = slowest.max(started.elapsed());
            // Answered while the attack was still on.
            if attack.try_wait().expect("slowhttptest runs").is_none() {
                answered += 1;
            }
            thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "{mode}: {answered} signed POSTs answered during the attack, slowest in {slowest:?}"
        );
        assert!(
            answered >= 3,
            "{mode}: only {answered} POSTs answered during the attack"
        );
    }
}

#[test]
fn the_range_attack_finds_no_connection_to_hold() {
    let Some(tool) = program("slowhttptest", &[]) else {
        return skipped(
            "attacks: slowhttptest's range mode",
            "slowhttptest not found",
        );
    };
    let server = Binary::start(&[], &[]);
    // Ranges are not served: every request is answered whole, at once, and
    // the tool ends for want of a connection to hold.
    let output = Command::new(&tool)
        .args([
            "-R", "-a", "10", "-b", "3000", "-c", "300", "-r", "150", "-l", "6", "-p", "3",
        ])
        .args(["-u", &format!("http://{}/whatsapp", server.addr)])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run slowhttptest");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("No open connections left"), "{report}");
    let mut stream = connect(server.addr);
    stream
        .write_all(&signed_post(
            TOKEN,
            "http://example.com/whatsapp",
            &long_form(),
        ))
        .unwrap();
    read_response(&mut BufReader::new(stream), false).assert_twiml(DEFAULT_TWIML);
}
