//! `settle`: a transaction fee and settlement engine for card acquirers.
//!
//! Modules depend one way: `money` and `calendar` are pure; `config` reads
//! the policy; `ingest` turns bytes into compact records or rejects;
//! `pipeline` links and aggregates them in parallel; `ledger` settles each
//! merchant; `journal` explains each settlement row in postings; `state`
//! stores what a run carries to the next (merchant states and the id
//! index); `output` writes and publishes the files; `run` ties them
//! together for the command line; `statement` reads published runs back
//! into a merchant's statement, `report` into a page of charts over
//! them, and `diff` compares two published runs.
#![deny(unsafe_code)]

pub mod bench;
pub mod calendar;
pub mod config;
pub mod csv_field;
pub mod datagen;
pub mod diff;
pub mod error;
pub mod ingest;
pub mod journal;
pub mod ledger;
pub mod money;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod run;
pub mod split;
pub mod state;
pub mod statement;
pub mod stream;
pub mod verify;

pub use error::{Error, Result};
pub use run::{RunOptions, RunSummary, run};
