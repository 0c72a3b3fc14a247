//! `chatctl events tail`: what local mode emitted for the platform, sent or not, as
//! `chatctl serve` writes it to its data directory (`events.jsonl`).

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::error::{CliError, Result};

#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(clap::Subcommand)]
enum EventsCommand {
    /// Print the events local mode emitted (and what became of each), oldest first.
    Tail {
        /// The data directory of `chatctl serve`.
        #[arg(long, default_value = ".context-chat", env = "CHAT_DATA_DIR")]
        data_dir: PathBuf,
        /// Keep printing new ones as they come.
        #[arg(long, short)]
        follow: bool,
        /// Print each line as JSON, as it is kept.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: EventsArgs) -> Result<()> {
    let EventsCommand::Tail {
        data_dir,
        follow,
        json,
    } = args.command;
    let path = data_dir.join(crate::serve::EVENTS_JOURNAL_FILE);
    let mut offset = 0u64;
    loop {
        offset = print_from(&path, offset, json)?;
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints the whole lines after `offset`; answers where it stopped.
fn print_from(path: &std::path::Path, offset: u64, json: bool) -> Result<u64> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(0);
    };
    file.seek(SeekFrom::Start(offset))
        .map_err(CliError::file(path))?;
    let mut reader = BufReader::new(file);
    let mut read = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(CliError::file(path))?;
        if n == 0 || !line.ends_with('\n') {
            return Ok(read);
        }
        read += n as u64;
        match json {
            true => print!("{line}"),
            false => println!("{}", describe(line.trim_end())),
        }
    }
}

/// One line for a person: status, type, id, then the event's data or what happened.
pub fn describe(line: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let status = text(&value["status"]);
    let id = text(&value["id"]);
    match value.get("event") {
        Some(event) => format!(
            "{} {} {} {} {}",
            text(&event["timestamp"]),
            status,
            text(&event["type"]),
            id,
            event["data"]
        ),
        None => {
            let mut out = format!(
                "{status} {} {id} attempt {}",
                text(&value["type"]),
                value["attempt"]
            );
            if let Some(failure) = value["failure"].as_str() {
                out.push_str(&format!(": {failure}"));
            }
            if let Some(ms) = value["retryInMs"].as_u64() {
                out.push_str(&format!(", again in {} ms", ms));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_a_person_would_say_them() {
        let queued = r#"{"id":"msg_1","status":"queued","event":{"type":"membership.joined","timestamp":"2026-12-07T10:00:00Z","data":{"context":"general","identity":"alex"}}}"#;
        assert_eq!(
            describe(queued),
            r#"2026-12-07T10:00:00Z queued membership.joined msg_1 {"context":"general","identity":"alex"}"#
        );
        let failed = r#"{"id":"msg_1","type":"membership.joined","status":"failed","attempt":2,"failure":"HTTP 500","retryInMs":2000}"#;
        assert_eq!(
            describe(failed),
            "failed membership.joined msg_1 attempt 2: HTTP 500, again in 2000 ms"
        );
        assert_eq!(describe("not json"), "not json");
    }
}
