//! chatctl's one error type: what went wrong, worded so that a person can act on it.

use std::path::{Path, PathBuf};

use context_chat::ChatError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments or the environment do not say what is needed.
    #[error("{0}")]
    Usage(String),
    /// The library refused or failed; its message says why.
    #[error("{}", .0.message)]
    Chat(#[from] ChatError),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Something on the way failed: the server's socket, a call to AWS.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// For `map_err`: an I/O error on `path`.
    pub fn file(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::File {
            path: path.to_owned(),
            source,
        }
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
