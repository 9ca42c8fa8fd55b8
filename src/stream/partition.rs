//! A partition's close of a business day: the batch pipeline run over the
//! rows of the merchants one partition owns, published as a run folder
//! that `settle merge` joins with the others (docs/STREAM.md).
//!
//! The close is in two steps, because the run's start (RULES.md 2) is the
//! earliest accepted business date over all merchants, which no partition
//! knows alone: `open` parses and links and reports the partition's own
//! earliest date; `finish` settles and writes with the run's start that
//! the caller found over every partition. This module restricts the
//! inputs to the partition; it must not settle money itself (the pipeline
//! does) nor know how rows travel (NATS is the worker's business).

use std::path::{Path, PathBuf};

use crate::calendar::{self, Day};
use crate::config::{self, Settings, limits};
use crate::error::{Error, Result};
use crate::ingest::header::{self, Header};
use crate::ingest::reject::RejectCode;
use crate::ingest::txn::{self, Kind};
use crate::ingest::{Merchants, Source, adjustments, merchants};
use crate::output::{self, control::InputFile, control::sha256_hex};
use crate::pipeline::{self, Ingested, Input, Plan, TxnFile, Verdicts};
use crate::state::{self, PriorState};

use super::folder::{self, AdjustmentJudgement, Description, IndexLine, Named};
use super::{FileHead, PARTITIONS_MAX, Row, partition_of, records, restrict};

/// What a partition's close reads besides its rows.
#[derive(Clone, Debug)]
pub struct PartitionOptions {
    pub config: PathBuf,
    pub merchants: PathBuf,
    pub adjustments: Option<PathBuf>,
    /// The MERGED folder of the day before (`settle merge --out`).
    pub state_in: Option<PathBuf>,
    /// The business day that closes: the run's `--through`.
    pub through: Day,
    pub partition: u32,
    pub partitions: u32,
}

/// What a published partition reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSummary {
    pub partition: u32,
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub settlement_rows: usize,
    pub start: Option<Day>,
}

/// A partition parsed and linked, waiting for the run's start.
pub struct Opened {
    options: PartitionOptions,
    files: Vec<FileHead>,
    settings: Settings,
    config_sha256: String,
    /// The whole master data, which judges the adjustments.
    all_merchants: Merchants,
    merchants_sha256: String,
    /// The partition's merchants.
    merchants: Merchants,
    /// The rebuilt transaction files, with their headers.
    sources: Vec<Source>,
    headers: Vec<Header>,
    adjustments: Option<(Vec<u8>, String)>,
    prior: Option<PriorState>,
    verdicts: Verdicts,
    /// Parsed and linked; `None` only inside `finish`.
    ingested: Option<Ingested>,
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Usage(format!("{}: cannot read: {e}", path.display())))
}

/// Parses and links the rows of partition `options.partition` (given in
/// (file index, line) order, all of this partition) of the input files
/// `files`. Anything fatal (configuration, master data, a header, the
/// starting state) stops here, as it stops `settle run`.
pub fn open(options: &PartitionOptions, files: &[FileHead], rows: &[Row]) -> Result<Opened> {
    let (partition, partitions) = (options.partition, options.partitions);
    if !(1..=PARTITIONS_MAX).contains(&partitions) || partition >= partitions {
        return Err(Error::Usage(format!(
            "partition {partition} of {partitions}: a partition is 0 to partitions - 1, with 1 to {PARTITIONS_MAX} partitions"
        )));
    }
    if files.len() > limits::TXN_FILES_MAX {
        return Err(Error::Usage(format!(
            "{} input files; a run reads at most {}",
            files.len(),
            limits::TXN_FILES_MAX
        )));
    }
    for (at, file) in files.iter().enumerate() {
        if files[..at].iter().any(|other| other.name == file.name) {
            return Err(Error::Usage(format!(
                "{}: named twice among the inputs; stream mode needs distinct file names (rejects.csv tells files apart by name)",
                file.name
            )));
        }
    }
    debug_assert!(
        rows.windows(2)
            .all(|w| (w[0].file_index, w[0].line) < (w[1].file_index, w[1].line)),
        "rows in (file index, line) order"
    );
    let config_bytes = read(&options.config)?;
    let settings = config::parse_bytes(&options.config, &config_bytes)?;
    let mut prior = options.state_in.as_deref().map(state::read).transpose()?;
    if let Some(horizon) = prior.as_ref().and_then(|p| p.horizon)
        && options.through <= horizon
    {
        return Err(Error::Usage(format!(
            "--through {} is not after {}, the horizon of the state in {}",
            calendar::format_date(options.through),
            calendar::format_date(horizon),
            options
                .state_in
                .as_deref()
                .unwrap_or(Path::new(""))
                .display()
        )));
    }
    // The state's merchants of other partitions are theirs to carry; its
    // index stays whole, for ids and purchases of any merchant.
    if let Some(prior) = prior.as_mut() {
        prior
            .merchants
            .retain(|(id, _)| partition_of(id.as_bytes(), partitions) == partition);
    }
    let merchants_name = display(&options.merchants);
    let merchants_bytes = read(&options.merchants)?;
    let all_merchants = merchants::parse(&merchants_bytes, &merchants_name)?;
    let merchants = restrict::merchants(&merchants_bytes, &merchants_name, partition, partitions)?;
    let adjustments = match &options.adjustments {
        None => None,
        Some(path) => {
            let name = display(path);
            let bytes = read(path)?;
            adjustments::read_header(&bytes, &name)?;
            Some((bytes, name))
        }
    };

    let mut sources = Vec::with_capacity(files.len());
    let mut headers = Vec::with_capacity(files.len());
    let mut verdicts = Vec::new();
    let mut rest = rows;
    for (file_index, head) in files.iter().enumerate() {
        let count = rest
            .iter()
            .take_while(|row| row.file_index as usize == file_index)
            .count();
        let (mine, after) = rest.split_at(count);
        rest = after;
        #[cfg(debug_assertions)]
        restrict::check_partition(mine, head, partition, partitions);
        for row in mine {
            if let Some(first) = row.duplicate_of {
                verdicts.push(((row.file_index, row.line), first));
            }
        }
        let mine: Vec<&Row> = mine.iter().collect();
        let bytes = records::rebuild(head, &mine)?;
        headers.push(header::read(&bytes, &head.name, &txn::COLUMNS)?);
        sources.push(Source::Owned(bytes));
    }
    if let Some(row) = rest.first() {
        return Err(Error::Usage(format!(
            "a row names input file {} of {}, or comes out of (file, line) order",
            row.file_index,
            files.len()
        )));
    }
    let verdicts = Verdicts::new(verdicts);
    let mut opened = Opened {
        options: options.clone(),
        files: files.to_vec(),
        config_sha256: sha256_hex(&config_bytes),
        settings,
        all_merchants,
        merchants_sha256: sha256_hex(&merchants_bytes),
        merchants,
        sources,
        headers,
        adjustments,
        prior,
        verdicts,
        ingested: None,
    };
    let ingested = pipeline::ingest(&opened.plan(None))?;
    opened.ingested = Some(ingested);
    Ok(opened)
}

impl Opened {
    /// The plan of the partition's run, with `adjustments` (the
    /// partition's rebuilt file and its name) when they are known.
    fn plan<'a>(&'a self, adjustments: Option<(&'a [u8], &'a str)>) -> Plan<'a> {
        Plan {
            settings: &self.settings,
            merchants: &self.merchants,
            txn_files: self
                .sources
                .iter()
                .zip(&self.headers)
                .zip(&self.files)
                .map(|((source, header), head)| TxnFile {
                    name: &head.name,
                    input: Input::Bytes(source),
                    header,
                })
                .collect(),
            adjustments,
            through: Some(self.options.through),
            chunk_bytes: limits::CHUNK_BYTES_TARGET,
            prior: self.prior.as_ref(),
            terminal_ids: false,
            journal_per_transaction: false,
            progress: None,
            duplicates: Some(&self.verdicts),
        }
    }

    /// The earliest business date of an accepted row of this partition,
    /// or, from a starting state, the day after its horizon (the same in
    /// every partition). The run's start is the least of all partitions'.
    pub fn local_start(&self) -> Option<Day> {
        self.ingested().start()
    }

    fn ingested(&self) -> &Ingested {
        self.ingested
            .as_ref()
            .expect("an opened partition is ingested")
    }

    /// Settles the partition with the run's `start` and publishes its
    /// folder at `out` whole or not at all, as `settle run` publishes.
    pub fn finish(mut self, start: Option<Day>, out: &Path) -> Result<PartitionSummary> {
        output::check_out_dir(out)?;
        let local_start = self.local_start();
        if self.prior.as_ref().and_then(|p| p.horizon).is_some() && start != local_start {
            return Err(Error::Usage(format!(
                "a run from a state starts on {}, not on the start given",
                local_start.map(calendar::format_date).unwrap_or_default()
            )));
        }
        if let Some(ingested) = self.ingested.as_mut() {
            ingested.set_start(start);
        }
        let judgement = self.judge_adjustments()?;
        let index_lines = self.index_lines();

        let mut staging = output::Staging::create(out)?;
        let index = pipeline::carry::write_index(
            staging.path(),
            self.ingested(),
            &self.merchants,
            &self.settings,
            self.prior.as_ref(),
        )?;
        staging.sync_in_background(index.unsynced);
        let ingested = self
            .ingested
            .take()
            .expect("an opened partition is ingested");
        let partition_adjustments = judgement.as_ref().map(|(_, bytes)| bytes.as_slice());
        let adjustments_name = self.adjustments.as_ref().map(|(_, name)| name.as_str());
        let plan = self.plan(partition_adjustments.zip(adjustments_name));
        let mut settled = pipeline::settle(&plan, ingested)?;
        let state_files = pipeline::carry::state_files(
            &settled,
            &self.merchants,
            &self.settings,
            &index.segments,
        );
        settled.drop_transactions();

        let info = output::RunInfo {
            config: InputFile {
                path: display(&self.options.config),
                sha256: self.config_sha256.clone(),
                stored: None,
            },
            merchants: InputFile {
                path: display(&self.options.merchants),
                sha256: self.merchants_sha256.clone(),
                stored: None,
            },
            transactions: self
                .files
                .iter()
                .map(|head| InputFile {
                    path: head.name.clone(),
                    sha256: head.sha256.clone(),
                    stored: None,
                })
                .collect(),
            adjustments: self.adjustments.as_ref().map(|(bytes, name)| InputFile {
                path: name.clone(),
                sha256: sha256_hex(bytes),
                stored: None,
            }),
            through: Some(self.options.through),
            detail: false,
            state: true,
        };
        let format = output::Format::Csv;
        let mut written = output::write_outputs(
            &staging,
            &settled,
            &self.merchants,
            &self.settings,
            &info,
            format,
        )?;
        let journal =
            output::write_journal(&staging, &settled, &self.merchants, &self.settings, format)?;
        written.files.extend(journal);
        output::finish(
            &staging,
            &mut written,
            &settled,
            &self.merchants,
            &info,
            None,
            state_files,
        )?;
        let description = Description {
            partition: self.options.partition,
            partitions: self.options.partitions,
            through: self.options.through,
            local_start,
            start,
            config: Named {
                path: info.config.path.clone(),
                sha256: info.config.sha256.clone(),
            },
            merchants: Named {
                path: info.merchants.path.clone(),
                sha256: info.merchants.sha256.clone(),
            },
            merchant_rows: self.all_merchants.len() as u64,
            state_in: self.options.state_in.as_deref().map(display),
            transactions: info
                .transactions
                .iter()
                .map(|f| Named {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                })
                .collect(),
            adjustments: judgement.map(|(judgement, _)| judgement),
        };
        staging.write_files(&[
            (
                folder::PARTITION_FILE.to_string(),
                description.render().into_bytes(),
            ),
            (
                folder::INDEX_FILE.to_string(),
                folder::render_index(&index_lines).into_bytes(),
            ),
        ])?;
        staging.publish()?;
        Ok(PartitionSummary {
            partition: self.options.partition,
            rows_read: settled.txn_counts.iter().map(|c| c.rows_read).sum(),
            rows_rejected: settled.rejects.len() as u64,
            settlement_rows: settled.rows.iter().map(Vec::len).sum(),
            start,
        })
    }

    /// The whole adjustments file's judgement, and this partition's
    /// rebuilt file (`restrict::adjustments`).
    fn judge_adjustments(&self) -> Result<Option<(AdjustmentJudgement, Vec<u8>)>> {
        let Some((bytes, name)) = &self.adjustments else {
            return Ok(None);
        };
        let lag = self.settings.settlement_lag_days;
        let owned = self
            .span()
            .map(|(start, horizon)| (start + lag, horizon + lag));
        let names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        restrict::adjustments(
            (bytes, name),
            &names,
            &self.all_merchants,
            owned,
            (self.options.partition, self.options.partitions),
        )
        .map(Some)
    }

    /// The run's span (start, horizon), as `set_start` fixed it.
    fn span(&self) -> Option<(Day, Day)> {
        match (self.ingested().start(), self.ingested().horizon) {
            (Some(start), Some(horizon)) if start <= horizon => Some((start, horizon)),
            _ => None,
        }
    }

    /// Where each entry of the partition's own index segment stands, as
    /// `carry::write_index` orders them: this run's first row of each id
    /// inside the index window in file order, then the earlier runs'
    /// purchases it changed; and for every earlier entry its references
    /// named, the first of them, which orders the changed ones in the
    /// batch run (docs/STREAM.md).
    fn index_lines(&self) -> Vec<IndexLine> {
        let parsed = &self.ingested().parsed;
        let linked = &self.ingested().linked;
        let horizon = self.ingested().horizon;
        let first_day = horizon.map(|h| h.saturating_sub(self.settings.refund_retention_days - 1));
        let window = |day: Day| match (first_day, horizon) {
            (Some(first), Some(last)) => (first..=last).contains(&day),
            _ => false,
        };
        let at = |txn: &txn::Txn| (u32::from(txn.file_index), u64::from(txn.line));
        let mut lines: Vec<IndexLine> = parsed
            .txns
            .iter()
            .enumerate()
            .filter(|(i, txn)| {
                linked.rejected[*i] != Some(RejectCode::DuplicateTxnId) && window(txn.business_day)
            })
            .map(|(_, txn)| IndexLine::Row {
                at: at(txn),
                id: parsed.txn_id(txn).to_vec(),
            })
            .collect();
        if linked.prior.is_empty() {
            return lines;
        }
        let slots: hashbrown::HashMap<&[u8], usize> = linked
            .prior
            .iter()
            .enumerate()
            .map(|(slot, p)| (p.entry.id.as_slice(), slot))
            .collect();
        let mut first_reference: Vec<Option<(u32, u64)>> = vec![None; linked.prior.len()];
        for txn in &parsed.txns {
            // The rows whose reference the index lookup asked for.
            if txn.kind == Kind::Purchase || txn.row_check.is_some() {
                continue;
            }
            if let Some(&slot) = slots.get(parsed.orig_txn_id(txn)) {
                first_reference[slot].get_or_insert(at(txn));
            }
        }
        for (p, first) in linked.prior.iter().zip(first_reference) {
            lines.push(IndexLine::Prior {
                first_reference: first.expect("a named entry has a reference"),
                changed: p.changed && window(p.entry.business_day),
                id: p.entry.id.clone(),
            });
        }
        lines
    }
}
