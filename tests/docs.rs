//! The README and docs/ as a new user reads them: every relative link (and
//! the heading it points at) exists, every command that runs the server or
//! `check` is one the command line accepts, the README's JSON-log command
//! reads what the server writes, and the limits stated are the code's.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{Binary, TWILIO_WHATSAPP_FORM, post_form, program, skipped};
use whatsapp_webhook::cli;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// README.md and every page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("read docs/")
        .map(|entry| entry.expect("read docs/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// A page's text outside fenced code blocks, where links are links.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let end = rest.find(')')?;
            Some(rest[..end].to_owned())
        })
        .collect()
}

/// The anchors GitHub gives a page's headings: lowercased, punctuation
/// other than `-` and `_` dropped, spaces as `-`.
fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| {
            line.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[test]
fn relative_links_and_their_headings_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = read(&page);
        let dir = page.parent().expect("a page is in a folder");
        for target in link_targets(&prose(&text)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                page.clone()
            } else {
                dir.join(path)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}: no such file", page.display()));
                continue;
            }
            if !anchor.is_empty() && !anchors(&read(&file)).iter().any(|a| a == anchor) {
                broken.push(format!("{}: {target}: no such heading", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
    assert!(checked > 20, "only {checked} relative links found");
}

#[test]
fn the_docs_the_deployment_files_name_exist() {
    let mut named = 0;
    for entry in walk(&Path::new(ROOT).join("deploy")) {
        let text = read(&entry);
        // A path of this repository, not the end of a URL.
        let paths = text
            .match_indices("docs/")
            .filter(|(at, _)| !text[..*at].ends_with(|c: char| c == '/' || c.is_alphanumeric()));
        for (at, _) in paths {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'))
                .collect();
            let name = name.trim_end_matches('.');
            named += 1;
            assert!(
                Path::new(ROOT).join(name).exists(),
                "{} names {name}, which does not exist",
                entry.display()
            );
        }
    }
    assert!(named > 0, "deploy/ names no page of docs/");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).expect("read a folder") {
            let path = entry.expect("read a folder").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// `line` split into words as `sh` splits them (quotes, backslashes),
/// up to the first `|`, `;`, `&&`, redirection or comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                word.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c if c.is_whitespace() => words.extend(word.take()),
            '|' | ';' | '&' | '#' | '>' if word.is_none() => break,
            '>' if word
                .as_deref()
                .is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit())) =>
            {
                word = None;
                break;
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// A command that runs this program: its environment and its arguments.
#[derive(Debug)]
struct Invocation {
    page: String,
    line: String,
    env: BTreeMap<String, String>,
    args: Vec<String>,
}

/// The invocation `line` is, if it runs this program (`cargo run
/// --release [-- ARGS]` or `whatsapp-webhook ARGS`), with `exported`
/// added to its environment.
fn invocation(page: &str, line: &str, exported: &BTreeMap<String, String>) -> Option<Invocation> {
    let words = shell_words(line);
    let mut env = exported.clone();
    let mut rest = words.as_slice();
    while let [first, tail @ ..] = rest {
        let Some((name, value)) = first.split_once('=') else {
            break;
        };
        if !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            break;
        }
        env.insert(name.to_owned(), value.to_owned());
        rest = tail;
    }
    let args = match rest {
        [cargo, run, release, tail @ ..]
            if cargo == "cargo" && run == "run" && release == "--release" =>
        {
            match tail {
                [] => Vec::new(),
                [dashes, args @ ..] if dashes == "--" => args.to_vec(),
                // `--quiet`, `--example echo`: cargo's own options.
                [option, ..] if option.starts_with("--") => {
                    match tail.iter().position(|word| word == "--") {
                        Some(at) => tail[at + 1..].to_vec(),
                        None => Vec::new(),
                    }
                }
                _ => return None,
            }
        }
        [program, args @ ..] if program == "whatsapp-webhook" => args.to_vec(),
        _ => return None,
    };
    Some(Invocation {
        page: page.to_owned(),
        line: line.to_owned(),
        env,
        args,
    })
}

/// Where a line of a page is.
enum Block {
    /// Outside code blocks.
    Prose,
    /// In an `sh` block, with what its `export` lines set so far.
    Shell(BTreeMap<String, String>),
    /// In another block (output, TwiML, JSON): no commands.
    Other,
}

/// Every command in README.md and docs/ that runs this program: the lines
/// of `sh` blocks (after the block's `export`s) and code spans in the text.
fn invocations() -> Vec<Invocation> {
    let mut found = Vec::new();
    for page in pages() {
        let text = read(&page);
        let name = page
            .strip_prefix(ROOT)
            .unwrap_or(&page)
            .display()
            .to_string();
        let mut block = Block::Prose;
        let mut pending = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") {
                block = match block {
                    Block::Prose if trimmed == "```sh" => Block::Shell(BTreeMap::new()),
                    Block::Prose => Block::Other,
                    Block::Shell(_) | Block::Other => Block::Prose,
                };
                continue;
            }
            let Block::Shell(exported) = &mut block else {
                continue;
            };
            if let Some(continued) = trimmed.strip_suffix('\\') {
                pending.push_str(continued);
                continue;
            }
            let whole = std::mem::take(&mut pending) + trimmed;
            if let Some(assignment) = whole.strip_prefix("export ") {
                for word in shell_words(assignment) {
                    if let Some((name, value)) = word.split_once('=') {
                        exported.insert(name.to_owned(), value.to_owned());
                    }
                }
            }
            found.extend(invocation(&name, &whole, exported));
        }
        // Code spans, which may wrap across lines.
        let joined = prose(&text)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for (index, span) in joined.split('`').enumerate() {
            if index % 2 == 1
                && (span.contains("cargo run --release") || span.starts_with("whatsapp-webhook "))
            {
                found.extend(invocation(&name, span, &BTreeMap::new()));
            }
        }
    }
    found
}

#[test]
fn every_command_in_the_docs_is_one_the_program_accepts() {
    let found = invocations();
    let mut refused = Vec::new();
    for invocation in &found {
        let env = |name: &str| invocation.env.get(name).map(OsString::from);
        if let Err(error) = cli::parse(invocation.args.iter().map(OsString::from), env) {
            refused.push(format!("{}: {}: {error}", invocation.page, invocation.line));
        }
    }
    assert!(
        refused.is_empty(),
        "commands the program refuses: {refused:#?}"
    );
    let checks = found
        .iter()
        .filter(|invocation| invocation.args.first().is_some_and(|arg| arg == "check"))
        .count();
    assert!(
        found.len() > 20 && checks > 5,
        "only {} commands found, {checks} of them checks: {found:#?}",
        found.len()
    );
}

#[test]
fn the_splitter_reads_commands_as_sh_does() {
    assert_eq!(
        shell_words(r#"A='x y' cargo run --release -- --on "a=b \"c\"" 2>&1 | jq ."#),
        [
            "A=x y",
            "cargo",
            "run",
            "--release",
            "--",
            "--on",
            r#"a=b "c""#
        ]
    );
    let exported = BTreeMap::from([("B".to_owned(), "1".to_owned())]);
    let found = invocation("x", "A=2 cargo run --release --quiet", &exported).unwrap();
    assert!(found.args.is_empty());
    assert_eq!(found.env.len(), 2);
    assert!(invocation("x", "cargo test", &exported).is_none());
    // A command the program refuses is found, so the test above can fail.
    let wrong = invocation("x", "cargo run --release -- --prot 9000", &exported).unwrap();
    assert!(cli::parse(wrong.args.iter().map(OsString::from), |_| None).is_err());
}

/// The README's `LOG_FORMAT=json ... | jq FILTER` command, split at the pipe.
fn readme_json_command() -> (String, Vec<String>) {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let line = readme
        .lines()
        .find(|line| line.starts_with("LOG_FORMAT=json ") && line.contains("| jq "))
        .expect("the README pipes JSON logs to jq");
    let (server, jq) = line.split_once("| jq ").expect("a pipe to jq");
    (server.trim().to_owned(), shell_words(jq))
}

#[test]
fn the_readme_json_command_reads_the_servers_json() {
    let (server, jq_args) = readme_json_command();
    // Without --quiet, cargo's own lines ("Compiling ...", "Running ...")
    // reach jq, which stops at the first: the server never starts.
    assert!(
        server.contains("cargo run --release --quiet 2>&1")
            || server.contains("whatsapp-webhook 2>&1"),
        "{server}"
    );
    let Some(jq) = program("jq", &[]) else {
        return skipped("docs: the README's jq command", "jq not found");
    };
    // The binary the command runs, with the same environment.
    let mut binary = Binary::start(&[], &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")]);
    binary
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(support::DEFAULT_TWIML);
    binary.wait_for("SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b");
    let lines = binary.log_so_far().join("\n") + "\n";
    let mut child = Command::new(jq)
        .args(&jq_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jq");
    child
        .stdin
        .take()
        .expect("jq's stdin")
        .write_all(lines.as_bytes())
        .expect("write to jq");
    let output = child.wait_with_output().expect("wait for jq");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "jq {jq_args:?} failed on the server's lines:\n{lines}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        out.trim(),
        r#"{"sid":"SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b","from":"whatsapp:+15551234567","body":"Hello doc! Café & co = 100% 👋","status":null}"#,
        "from:\n{lines}"
    );
}

#[test]
fn the_memory_of_replies_is_as_large_as_docs_say() {
    use whatsapp_webhook::replying::{FOR, REMEMBERED, REMEMBERED_BYTES};
    let text = read(&Path::new(ROOT).join("docs/replies.md")).replace('\n', " ");
    let (thousands, units) = (REMEMBERED / 1000, REMEMBERED % 1000);
    let stated = format!(
        "the last {thousands} {units:03} messages of the last hour, and at most {} MiB of replies",
        REMEMBERED_BYTES / (1024 * 1024)
    );
    assert!(
        text.contains(&stated),
        "docs/replies.md should say: {stated}"
    );
    assert_eq!(REMEMBERED_BYTES % (1024 * 1024), 0, "a whole number of MiB");
    assert_eq!(FOR.as_secs(), 3600, "an hour");
}
