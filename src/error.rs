//! Fatal errors: the ones that stop a run before anything is published.
//! A rejected row is not an error; it is a value (`ingest::Reject`).

use std::path::Path;

/// Why a run stopped. Only `main` turns this into an exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad command-line usage: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Bad configuration, naming the file and the key: exit 2.
    #[error("{file}: {key}: {problem}")]
    Config {
        file: String,
        key: String,
        problem: String,
    },
    /// Bad master data or a bad input header, naming the file: exit 2.
    #[error("{file}: {problem}")]
    Input { file: String, problem: String },
    /// An I/O failure during the run: exit 1.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The totals do not balance; nothing is published: exit 1.
    #[error("conservation check failed, nothing published: {0}")]
    Conservation(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Config { .. } | Error::Input { .. } => 2,
            Error::Io { .. } | Error::Conservation(_) => 1,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn input(file: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Input {
            file: file.into(),
            problem: problem.into(),
        }
    }

    pub fn config(file: &Path, key: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Config {
            file: file.display().to_string(),
            key: key.into(),
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
