//! What happens when tiny_http's accept thread ends: the process must not sit
//! silent with connections piling up.

mod support;

use std::net::TcpStream;
use std::process::Command;

use support::{Binary, PATIENCE};

/// Starts the binary with a soft and hard limit of `limit` open files.
fn start_with_file_limit(limit: u32) -> Binary {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(Binary::path())
        .args(["--host", "127.0.0.1", "--port", "0"]);
    Binary::start_command(command, &[])
}

/// Opens a burst of connections, more than the server has descriptors for,
/// then closes them.
fn burst(server: &Binary) {
    let burst: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect_timeout(&server.addr, PATIENCE).ok())
        .collect();
    assert!(!burst.is_empty());
}

fn assert_exits_1_saying_it_stopped_accepting(server: &mut Binary) {
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(1), "{:#?}", server.seen);
    let last = server.seen.last().expect("a last line");
    assert!(
        last.starts_with("whatsapp-webhook: the server stopped accepting connections: "),
        "{last}"
    );
}

// Each connection costs tiny_http two descriptors (`accept`, then `dup`), so
// of two limits one apart, one makes `accept` fail, and tiny_http reports the
// error; the other makes the `dup` fail, and tiny_http's accept thread panics
// without reporting anything, which only the watchdog notices. Which limit
// does which depends on how many descriptors the process already holds.
#[test]
fn running_out_of_descriptors_at_an_even_limit_ends_the_process_with_status_1() {
    let mut server = start_with_file_limit(32);
    burst(&server);
    assert_exits_1_saying_it_stopped_accepting(&mut server);
}

#[test]
fn running_out_of_descriptors_at_an_odd_limit_ends_the_process_with_status_1() {
    let mut server = start_with_file_limit(33);
    burst(&server);
    assert_exits_1_saying_it_stopped_accepting(&mut server);
}
