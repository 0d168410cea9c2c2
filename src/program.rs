//! The reply program: a command, in any language, that answers each
//! message (`REPLY_COMMAND`).
//!
//! It runs through `sh -c`, from the server's working directory, in a
//! process group of its own, once for each message (the [`replying`]
//! runtime sees to "once"). Nothing of the message enters its command line:
//!
//! - **standard input** gets the message as one JSON object
//!   ([`Message::to_json`]), then end of file;
//! - **the environment** is the server's, without the Twilio secrets the
//!   server reads, and with the main fields as `MESSAGE_*` variables
//!   ([`Message::env`]);
//! - **standard output** is the reply: plain text becomes one message or
//!   several ([`Reply::text`]); output that begins with `<` is TwiML, passed
//!   on unchanged when Twilio would accept it ([`Reply::twiml`]); empty
//!   output is no reply;
//! - **standard error** is logged, line by line, under the message's
//!   `MessageSid`, escaped.
//!
//! A non-zero exit, a signal, more than [`MAX_OUTPUT`] bytes, output that
//! is not UTF-8, or TwiML Twilio would refuse is a [`Failure`]: the message
//! gets the fallback reply. When the time limit passes, the program and
//! everything it started get `SIGTERM`, and `SIGKILL` a second later; when
//! the program exits, whatever it left running in its group gets `SIGTERM`
//! too.
//!
//! [`replying`]: crate::replying

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use log::info;
use rustix::process::{Pid, Signal, kill_process_group};

use crate::handler::{Failure, Handler, Message, Reply};
use crate::logging::Escaped;

/// The most bytes of output read: a reply is never longer.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// How long a program told to stop with `SIGTERM` has before `SIGKILL`.
pub const GRACE: Duration = Duration::from_secs(1);

/// How many lines of standard error one run logs at most.
const MAX_LOGGED_LINES: usize = 100;

/// How many of its last lines of standard error a failure quotes.
const QUOTED_LINES: usize = 3;

/// The reply program.
#[derive(Debug, Clone)]
pub struct Program {
    command: String,
    /// Variables the program never sees: the server's secrets.
    hidden: Vec<&'static str>,
}

impl Program {
    /// A program run as `sh -c command`, without the variables `hidden`.
    pub fn new(command: &str, hidden: &[&'static str]) -> Program {
        Program {
            command: command.to_owned(),
            hidden: hidden.to_vec(),
        }
    }

    fn start(&self, message: &Message) -> io::Result<Child> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so that a signal reaches all it started.
            .process_group(0);
        for var in &self.hidden {
            command.env_remove(var);
        }
        command.envs(message.env());
        command.spawn()
    }
}

impl Handler for Program {
    fn reply(&self, message: &Message, deadline: Instant) -> Result<Reply, Failure> {
        let sid = message
            .sid
            .clone()
            .unwrap_or_else(|| "(no MessageSid)".to_owned());
        let mut child = self.start(message).map_err(|error| {
            Failure::new(format!(
                "the reply program cannot be started (sh -c {:?}): {error}",
                Escaped(&self.command).to_string()
            ))
        })?;
        let group = Pid::from_child(&child);
        let watch = killer().watch(group, deadline);

        let input = message.to_json();
        let stdin = child.stdin.take();
        let feeding = thread::spawn(move || {
            // A program that does not read its input closes the pipe: fine.
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(input.as_bytes());
            }
        });
        let stderr = child
            .stderr
            .take()
            .map(|stderr| thread::spawn(move || log_lines(&sid, stderr)));
        let (output, read) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            thread::spawn(move || {
                let mut bytes = Vec::new();
                let result = stdout
                    .take(MAX_OUTPUT as u64 + 1)
                    .read_to_end(&mut bytes)
                    .map(|_| bytes);
                // Dropping the pipe here makes a program that writes on get
                // SIGPIPE.
                let _ = output.send(result);
            });
        }

        let status = child.wait();
        let timed_out = watch.ended();
        // Whatever it left running in its group: stop it.
        let _ = kill_process_group(group, Signal::TERM);
        let output = match read.recv_timeout(GRACE) {
            Ok(output) => output,
            Err(_) => {
                let _ = kill_process_group(group, Signal::KILL);
                read.recv()
                    .unwrap_or_else(|_| Err(io::ErrorKind::BrokenPipe.into()))
            }
        };
        let _ = feeding.join();
        let last_lines = stderr
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();

        let failure = |what: String| {
            let quoted = if last_lines.is_empty() {
                String::new()
            } else {
                format!(
                    "; its last lines on standard error: {}",
                    last_lines.join(" | ")
                )
            };
            Failure::new(format!("the reply program {what}{quoted}"))
        };
        if timed_out {
            let limit = watch.limit();
            return Err(failure(format!(
                "did not finish within its time limit ({:.1}s): it and everything it started \
                 were stopped",
                limit.as_secs_f64()
            )));
        }
        // Too much output first: the pipe closed on it then, so a program
        // that wrote on was ended by SIGPIPE.
        if output
            .as_ref()
            .is_ok_and(|output| output.len() > MAX_OUTPUT)
        {
            return Err(failure(format!("wrote more than {MAX_OUTPUT} bytes")));
        }
        let status =
            status.map_err(|error| failure(format!("could not be waited for: {error}")))?;
        if let Some(problem) = exit_problem(status) {
            return Err(failure(problem));
        }
        let output = output.map_err(|error| failure(format!("could not be read: {error}")))?;
        reply_from(&output).map_err(failure)
    }
}

/// What is wrong with how the program ended, if anything.
fn exit_problem(status: ExitStatus) -> Option<String> {
    if status.success() {
        return None;
    }
    Some(match (status.code(), status.signal()) {
        (Some(127), _) => "exited with status 127: sh found no such command".to_owned(),
        (Some(126), _) => "exited with status 126: the command is not executable".to_owned(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    })
}

/// The reply a program's standard output makes.
///
/// # Errors
///
/// Says what is wrong: output that is not UTF-8, or TwiML Twilio would
/// refuse.
pub fn reply_from(output: &[u8]) -> Result<Reply, String> {
    let Ok(text) = std::str::from_utf8(output) else {
        return Err("wrote output that is not UTF-8".to_owned());
    };
    if text.trim().is_empty() {
        return Ok(Reply::none());
    }
    if text.trim_start().starts_with('<') {
        return Reply::twiml(output).map_err(|refusal| {
            let code = refusal
                .code
                .map(|code| format!(" (error {code})"))
                .unwrap_or_default();
            format!("wrote TwiML Twilio would refuse{code}: {}", refusal.problem)
        });
    }
    Ok(Reply::text(text))
}

/// Logs each line of `stderr` under `sid`, escaped, and returns the last
/// few, escaped, for a failure to quote.
fn log_lines(sid: &str, stderr: ChildStderr) -> Vec<String> {
    let mut last: VecDeque<String> = VecDeque::new();
    let mut logged = 0;
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line is read whole, but kept only up to a length.
        match lines.by_ref().take(4096).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() >= 4096 {
            // The rest of an overlong line is skipped.
            let mut rest = Vec::new();
            let _ = lines.read_until(b'\n', &mut rest);
        }
        let text = String::from_utf8_lossy(&line);
        let text = Escaped(text.trim_end_matches(['\n', '\r'])).to_string();
        logged += 1;
        if logged <= MAX_LOGGED_LINES {
            info!("{} reply program: {text}", Escaped(sid));
        } else if logged == MAX_LOGGED_LINES + 1 {
            info!(
                "{} reply program: (more lines on standard error, not logged)",
                Escaped(sid)
            );
        }
        if last.len() == QUOTED_LINES {
            last.pop_front();
        }
        last.push_back(text);
    }
    last.into()
}

/// Stops every reply program still running, and all they started
/// (`SIGKILL`): the server is about to exit, and they would outlive it in
/// process groups of their own.
pub fn stop_all() {
    if let Some(killer) = KILLER.get() {
        let (list, _) = &*killer.watched;
        for watched in lock(list).drain(..) {
            if *lock(&watched.state) != WatchState::Exited {
                let _ = kill_process_group(watched.group, Signal::KILL);
            }
        }
    }
}

static KILLER: OnceLock<Killer> = OnceLock::new();

/// The one thread that stops programs whose time limit has passed.
fn killer() -> &'static Killer {
    KILLER.get_or_init(Killer::start)
}

/// Stops the process groups of programs past their time limit.
struct Killer {
    watched: Arc<(Mutex<Vec<Arc<Watched>>>, Condvar)>,
}

/// A program's process group, watched until the program exits.
struct Watched {
    group: Pid,
    deadline: Instant,
    limit: Duration,
    /// Set when the program has exited, or when the time limit passed.
    state: Mutex<WatchState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchState {
    Running,
    Exited,
    /// Told to stop; killed outright at this instant if still there.
    Stopping(Instant),
}

/// Watching one program: [`Watch::ended`] when it has exited.
struct Watch(Arc<Watched>);

impl Watch {
    /// Notes that the program has exited; returns whether its time limit
    /// had passed first.
    fn ended(&self) -> bool {
        let mut state = lock(&self.0.state);
        let timed_out = matches!(*state, WatchState::Stopping(_));
        *state = WatchState::Exited;
        timed_out
    }

    fn limit(&self) -> Duration {
        self.0.limit
    }
}

impl Killer {
    fn start() -> Killer {
        let watched = Arc::new((Mutex::new(Vec::<Arc<Watched>>::new()), Condvar::new()));
        let shared = Arc::clone(&watched);
        let started = thread::Builder::new()
            .name("reply-killer".into())
            .spawn(move || Killer::run(&shared));
        if let Err(error) = started {
            log::error!("cannot start the thread that stops late reply programs: {error}");
        }
        Killer { watched }
    }

    fn watch(&self, group: Pid, deadline: Instant) -> Watch {
        let watched = Arc::new(Watched {
            group,
            deadline,
            limit: deadline.saturating_duration_since(Instant::now()),
            state: Mutex::new(WatchState::Running),
        });
        let (list, added) = &*self.watched;
        lock(list).push(Arc::clone(&watched));
        added.notify_one();
        Watch(watched)
    }

    fn run(watched: &(Mutex<Vec<Arc<Watched>>>, Condvar)) {
        let (list, added) = watched;
        let mut list = lock(list);
        loop {
            let now = Instant::now();
            let mut next = now + Duration::from_secs(3600);
            list.retain(|watched| {
                let mut state = lock(&watched.state);
                match *state {
                    WatchState::Exited => return false,
                    WatchState::Running if watched.deadline <= now => {
                        let _ = kill_process_group(watched.group, Signal::TERM);
                        let kill_at = now + GRACE;
                        *state = WatchState::Stopping(kill_at);
                        next = next.min(kill_at);
                    }
                    WatchState::Running => next = next.min(watched.deadline),
                    WatchState::Stopping(kill_at) if kill_at <= now => {
                        let _ = kill_process_group(watched.group, Signal::KILL);
                        return false;
                    }
                    WatchState::Stopping(kill_at) => next = next.min(kill_at),
                }
                true
            });
            list = added
                .wait_timeout(list, next.saturating_duration_since(now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is whole before the lock is released.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `command` as a program that must not see `HOME`, a variable
    /// every test process has.
    fn run(command: &str, message: &Message, limit: Duration) -> Result<Reply, Failure> {
        assert!(
            std::env::var_os("HOME").is_some(),
            "the tests need HOME set"
        );
        Program::new(command, &["HOME"]).reply(message, Instant::now() + limit)
    }

    fn said(command: &str) -> Result<Reply, String> {
        run(command, &Message::default(), Duration::from_secs(10)).map_err(|f| f.to_string())
    }

    #[test]
    fn plain_output_is_the_reply_and_empty_output_none() {
        assert_eq!(said("echo 'Hi there'"), Ok(Reply::text("Hi there")));
        assert_eq!(said("true"), Ok(Reply::none()));
        assert_eq!(said("printf '  \\n'"), Ok(Reply::none()));
        let twiml = said("printf '<Response><Message>x</Message></Response>'").unwrap();
        assert_eq!(twiml.render(), b"<Response><Message>x</Message></Response>");
    }

    #[test]
    fn the_program_reads_the_message_and_its_variables_but_no_secret() {
        let message = Message {
            sid: Some("SM1".to_owned()),
            body: Some("$(reboot) `x` \"q\"".to_owned()),
            ..Message::default()
        };
        let reply = run(
            "cat; printf '|%s|%s|' \"$MESSAGE_BODY\" \"${HOME-unset}\"",
            &message,
            Duration::from_secs(10),
        )
        .unwrap();
        let text = &reply.messages()[0].text;
        assert_eq!(
            text,
            &format!("{}|$(reboot) `x` \"q\"|unset|", message.to_json())
        );
    }

    #[test]
    fn failures_say_what_happened_with_the_last_lines_of_standard_error() {
        let error = said("echo one >&2; echo two >&2; exit 3").unwrap_err();
        assert_eq!(
            error,
            "the reply program exited with status 3; its last lines on standard error: one | two"
        );
        assert!(
            said("no-such-command-here")
                .unwrap_err()
                .contains("status 127")
        );
        assert!(
            said("kill -9 $$")
                .unwrap_err()
                .contains("killed by signal 9")
        );
        assert_eq!(
            said("printf '\\377'").unwrap_err(),
            "the reply program wrote output that is not UTF-8"
        );
        assert!(
            said("printf '<Response><Say>x</Say></Response>'")
                .unwrap_err()
                .starts_with("the reply program wrote TwiML Twilio would refuse (error 12200)")
        );
        assert_eq!(
            said("head -c 70000 /dev/zero | tr '\\0' x").unwrap_err(),
            "the reply program wrote more than 65536 bytes"
        );
        assert_eq!(
            said("head -c 65536 /dev/zero | tr '\\0' x").map(|reply| reply.messages().len()),
            Ok(41)
        );
    }

    #[test]
    fn past_its_time_limit_the_program_and_all_it_started_are_stopped() {
        let file = std::env::temp_dir().join(format!("reply-program-{}", std::process::id()));
        // The program ignores SIGTERM, so only SIGKILL ends it; what it
        // started in the background would outlive it otherwise.
        let command = format!(
            "sleep 60 & echo $! > {}; trap '' TERM; sleep 60; echo finished",
            file.display()
        );
        let error = run(&command, &Message::default(), Duration::from_millis(300)).unwrap_err();
        assert!(
            error.to_string().starts_with(
                "the reply program did not finish within its time limit (0.3s): it and \
                 everything it started were stopped"
            ),
            "{error}"
        );
        let background = std::fs::read_to_string(&file).unwrap();
        let _ = std::fs::remove_file(&file);
        let process = format!("/proc/{}", background.trim());
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::path::Path::new(&process).exists() {
            assert!(Instant::now() < deadline, "{process} still runs");
            thread::sleep(Duration::from_millis(20));
        }
    }
}
