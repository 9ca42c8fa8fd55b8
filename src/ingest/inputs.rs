//! The transaction files a run reads, from its `--transactions` arguments:
//! a folder stands for its `*.csv`, `*.csv.gz` and `*.csv.zst` files in
//! bytewise name order; a file or `-` (stdin) stands for itself.
//!
//! This module only names files; it must not open or read them.

use std::path::Path;

use crate::error::{Error, Result};

/// The endings of the files a folder contributes.
pub const FOLDER_FILE_ENDINGS: [&str; 3] = [".csv", ".csv.gz", ".csv.zst"];

/// The files `arguments` name, in order, each folder replaced by its
/// files. A folder that holds none is a usage error; a path that does not
/// exist is kept, for the open to report.
pub fn expand(arguments: &[String]) -> Result<Vec<String>> {
    let mut files = Vec::with_capacity(arguments.len());
    for argument in arguments {
        if argument != "-" && Path::new(argument).is_dir() {
            files.extend(folder_files(argument)?);
        } else {
            files.push(argument.clone());
        }
    }
    Ok(files)
}

/// The transaction files directly inside `folder`, sorted bytewise by name.
/// Names starting with `.` are left out, as a shell's `*` leaves them out;
/// so are subfolders.
fn folder_files(folder: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| Error::Usage(format!("{folder}: cannot list the folder: {e}")))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::Usage(format!("{folder}: cannot list the folder: {e}")))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::Usage(format!(
                "{folder}: holds a file whose name is not UTF-8 ({}); rename it or name the files one by one",
                name.to_string_lossy()
            )));
        };
        let wanted = !name.starts_with('.')
            && FOLDER_FILE_ENDINGS
                .iter()
                .any(|ending| name.len() > ending.len() && name.ends_with(ending));
        // `Path::is_file` follows a link, so a linked file counts.
        if wanted && entry.path().is_file() {
            names.push(name.to_string());
        }
    }
    if names.is_empty() {
        return Err(Error::Usage(format!(
            "{folder}: the folder holds no *.csv, *.csv.gz or *.csv.zst file"
        )));
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names
        .into_iter()
        .map(|name| Path::new(folder).join(name).display().to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_gives_its_transaction_files_in_bytewise_order() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("in");
        std::fs::create_dir(&folder).unwrap();
        for name in [
            "b.csv.zst",
            "B.csv",
            "a.csv.gz",
            "a10.csv",
            "a9.csv",
            ".hidden.csv",
            "notes.txt",
            "x.csv.bz2",
            ".csv",
        ] {
            std::fs::write(folder.join(name), b"x").unwrap();
        }
        std::fs::create_dir(folder.join("sub.csv")).unwrap();
        let folder = folder.display().to_string();
        let files = expand(&["-".into(), folder.clone(), "plain.csv".into()]).unwrap();
        let inside = |name: &str| format!("{folder}/{name}");
        assert_eq!(
            files,
            vec![
                "-".to_string(),
                inside("B.csv"),
                inside("a.csv.gz"),
                inside("a10.csv"),
                inside("a9.csv"),
                inside("b.csv.zst"),
                "plain.csv".to_string(),
            ]
        );
    }

    #[test]
    fn an_empty_folder_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("readme.txt"), b"x").unwrap();
        let folder = dir.path().display().to_string();
        let error = expand(std::slice::from_ref(&folder)).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert_eq!(
            error.to_string(),
            format!("{folder}: the folder holds no *.csv, *.csv.gz or *.csv.zst file")
        );
    }
}
