//! `settle report`: one self-contained HTML page with charts over one
//! published run folder or a chain of daily ones (docs/REPORT.md): fees by
//! category, payouts and receivables, deposits, deactivation fees and
//! waivers over the settlement dates, rejects by reason, the busiest
//! merchants, and a header with the runs, their inputs' digests and their
//! control totals.
//!
//! This module owns the report's figures (`ReportData`): which dates it
//! covers, the sums per date, category, reason and merchant, and the checks
//! that tie the files together (the journal's fees to the settlement
//! files', the settlement files' sums to control.json's totals). It reads
//! only published files (`read`, and `statement::read` for the folders and
//! the chain), leaves words and layout to `page` and drawing to `charts`,
//! and computes every figure in integer fen: nothing here uses floating
//! point. The page is written whole or not at all.
#![forbid(unsafe_code)]

mod charts;
mod page;
pub mod read;
mod sections;
mod summary;
pub mod what_if;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::ledger::AMOUNT_COLUMNS;
use crate::money;
use crate::statement::read::{RunFolder, check_chain, infer_lag, read_run};
pub use page::{Cell, Chart, LegendItem, Page, Section, Table};
pub use read::{Control, FeeSums, InputDigest, JournalSums, MerchantSums, SettlementSums};

/// The busiest merchants listed by default.
pub const TOP_DEFAULT: usize = 20;
/// The most merchants `--top` may list.
pub const TOP_MAX: usize = 1_000;
/// The most settlement dates one report covers (five years of daily
/// runs): a chart has a bar per date.
pub const DAYS_MAX: usize = 1_830;

/// What `settle report` was asked for.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Run folders, in any order: they are sorted by their start.
    pub runs: Vec<PathBuf>,
    /// How many of the busiest merchants to list.
    pub top: usize,
    /// `*.html`.
    pub out: PathBuf,
}

/// One run of the report, with its control.json.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub folder: RunFolder,
    pub control: Control,
    /// Settlement rows in the run's files.
    pub rows: u64,
}

/// One settlement date's figures, summed over its settlement file and
/// journal (all zero on a date without a file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayFigures {
    pub date: Day,
    pub rows: u64,
    pub txn_count: u64,
    /// Column sums in the order of `ledger::AMOUNT_COLUMNS`.
    pub columns: [i128; 12],
    /// What merchants owe at the end of the date (positive): see
    /// `receivables`.
    pub receivables_fen: i128,
    /// Net fees per category, in the order of `ReportData::categories`.
    pub category_fees_fen: Vec<i128>,
    pub deactivations_taken: u64,
    pub deactivations_waived: u64,
    pub deposit_holds: u64,
    pub deposit_releases: u64,
    pub deposit_forfeits: u64,
}

/// A settlement column of `DayFigures::columns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Purchases = 0,
    Refunds = 1,
    Fees = 2,
    CarriedIn = 4,
    DepositHeld = 6,
    DepositReleased = 7,
    DepositForfeited = 8,
    DeactivationFee = 9,
    Payout = 10,
    CarriedOut = 11,
}

impl DayFigures {
    pub fn column(&self, column: Column) -> i128 {
        self.columns[column as usize]
    }
}

/// One fee category over the whole report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CategoryTotal {
    pub name: String,
    pub debit_fen: i128,
    pub credit_fen: i128,
    /// Fees on postings of another card value (none in a valid journal).
    pub other_fen: i128,
    /// Purchases charged (the `count` of the fee postings).
    pub purchases: u64,
}

impl CategoryTotal {
    pub fn net_fen(&self) -> i128 {
        self.debit_fen + self.credit_fen + self.other_fen
    }
}

/// Everything the report shows, before words and layout. A new section
/// (a what-if from `settle diff`, say) adds its own figures beside these
/// and its own `Section` in `page`.
#[derive(Clone, Debug)]
pub struct ReportData {
    /// Sorted by start; they chain.
    pub runs: Vec<RunReport>,
    /// The settlement lag the chain implies (`statement::read::infer_lag`).
    pub lag: i32,
    /// Every date from the first settlement file's to the last's.
    pub days: Vec<DayFigures>,
    /// Categories by net fees, largest first (then by name).
    pub categories: Vec<CategoryTotal>,
    /// Rejected rows by reason, most first (then by reason).
    pub rejects: Vec<(String, u64)>,
    /// The busiest merchants by purchases, most first (then by id).
    pub top_merchants: Vec<(String, MerchantSums)>,
    /// Merchants with at least one settlement row.
    pub merchants_with_rows: u64,
    /// control.json's totals summed over the runs, in the order of
    /// `read::TOTAL_KEYS`.
    pub totals: [i128; 11],
    /// What merchants owe at the end of the last run (its control.json).
    pub receivables_fen: i128,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct ReportSummary {
    pub runs: usize,
    pub first: Option<Day>,
    pub last: Option<Day>,
    pub bytes: usize,
}

/// Builds the report and writes it to `options.out`. Bad input is an
/// `Error::Usage` or `Error::Input` (exit 2) and nothing is written.
pub fn report(options: &ReportOptions) -> Result<ReportSummary> {
    check_out(&options.out)?;
    let data = build(options)?;
    let page = sections::page(&data)?;
    let bytes = page::html(&page)?;
    crate::statement::write_atomically(&options.out, &bytes)?;
    Ok(ReportSummary {
        runs: data.runs.len(),
        first: data.days.first().map(|d| d.date),
        last: data.days.last().map(|d| d.date),
        bytes: bytes.len(),
    })
}

pub(crate) fn check_out(out: &Path) -> Result<()> {
    if out.extension().and_then(|e| e.to_str()) != Some("html") {
        return Err(Error::Usage(format!(
            "--out {} must end in .html",
            out.display()
        )));
    }
    if out.is_dir() {
        return Err(Error::Usage(format!(
            "--out {} is a folder, not a file",
            out.display()
        )));
    }
    Ok(())
}

/// One file to read, and what it gave.
enum Task {
    Settlement(PathBuf, Day),
    Journal(PathBuf, Day),
    Rejects(PathBuf),
}

enum Sums {
    Settlement(SettlementSums),
    Journal(JournalSums),
    Rejects(Vec<(Box<str>, u64)>),
}

impl Task {
    fn read(&self) -> Result<Sums> {
        Ok(match self {
            Task::Settlement(path, date) => Sums::Settlement(read::read_settlement(path, *date)?),
            Task::Journal(path, date) => Sums::Journal(read::read_journal(path, *date)?),
            Task::Rejects(path) => Sums::Rejects(read::read_rejects(path)?),
        })
    }
}

/// The files of a run, in order: per settlement date its settlement file
/// and journal, then rejects.csv. A missing journal or rejects.csv is a
/// usage error naming the folder.
fn tasks(run: &RunFolder) -> Result<Vec<Task>> {
    let mut tasks = Vec::with_capacity(2 * run.settlement_dates.len() + 1);
    for &date in &run.settlement_dates {
        let day = calendar::format_date(date);
        let settlement = run.dir.join(format!("settlement-{day}.csv"));
        let journal = run.dir.join(format!("journal-{day}.csv"));
        if !journal.is_file() {
            return Err(Error::Usage(format!(
                "{} has no journal: {} is missing (runs before the journal cannot be reported)",
                run.name(),
                journal.display()
            )));
        }
        tasks.push(Task::Settlement(settlement, date));
        tasks.push(Task::Journal(journal, date));
    }
    let rejects = run.dir.join("rejects.csv");
    if !rejects.is_file() {
        return Err(Error::Usage(format!(
            "{} is not a complete run: {} is missing",
            run.name(),
            rejects.display()
        )));
    }
    tasks.push(Task::Rejects(rejects));
    Ok(tasks)
}

/// Reads the runs and computes the report's figures, writing nothing.
pub fn build(options: &ReportOptions) -> Result<ReportData> {
    if options.runs.is_empty() {
        return Err(Error::Usage("report needs at least one run folder".into()));
    }
    if options.top > TOP_MAX {
        return Err(Error::Usage(format!(
            "--top {} is more than {TOP_MAX}",
            options.top
        )));
    }
    let mut folders = options
        .runs
        .iter()
        .map(|dir| read_run(dir))
        .collect::<Result<Vec<_>>>()?;
    check_chain(&mut folders)?;
    let lag = infer_lag(&folders)?;
    let dates: Vec<Day> = folders
        .iter()
        .flat_map(|run| run.settlement_dates.iter().copied())
        .collect();
    if let (Some(first), Some(last)) = (dates.first(), dates.last())
        && (last - first) as usize >= DAYS_MAX
    {
        return Err(Error::Usage(format!(
            "the runs span {} settlement dates ({} to {}), more than the {DAYS_MAX} one report shows: report fewer runs at a time",
            last - first + 1,
            calendar::format_date(*first),
            calendar::format_date(*last)
        )));
    }
    let controls = folders
        .iter()
        .map(|run| read::read_control(&run.dir))
        .collect::<Result<Vec<_>>>()?;
    let per_run: Vec<Vec<Task>> = folders.iter().map(tasks).collect::<Result<_>>()?;
    // Every file is read on its own (in parallel); the results come back
    // in task order, so the figures and the first error reported do not
    // depend on the number of threads.
    let all: Vec<&Task> = per_run.iter().flatten().collect();
    let mut results = all
        .par_iter()
        .map(|task| task.read())
        .collect::<Vec<_>>()
        .into_iter();
    let mut runs = Vec::with_capacity(folders.len());
    let mut day_sums: Vec<(Day, SettlementSums, JournalSums)> = Vec::with_capacity(dates.len());
    let mut reject_counts: HashMap<Box<str>, u64> = HashMap::new();
    for ((folder, control), tasks) in folders.into_iter().zip(controls).zip(&per_run) {
        let mut settlement = None;
        let mut run_rows = 0;
        let mut run_columns = [0i128; 12];
        for task in tasks {
            match (task, results.next().expect("one result per task")?) {
                (Task::Settlement(..), Sums::Settlement(sums)) => settlement = Some(sums),
                (Task::Journal(path, date), Sums::Journal(journal)) => {
                    let sums = settlement
                        .take()
                        .expect("a settlement file before its journal");
                    check_journal(path, &sums, &journal)?;
                    run_rows += sums.rows;
                    for (total, column) in run_columns.iter_mut().zip(sums.columns) {
                        *total += column;
                    }
                    day_sums.push((*date, sums, journal));
                }
                (Task::Rejects(_), Sums::Rejects(counts)) => {
                    for (reason, count) in counts {
                        *reject_counts.entry(reason).or_default() += count;
                    }
                }
                _ => unreachable!("each task gives its own kind of sums"),
            }
        }
        check_control(&folder, &control, &run_columns)?;
        runs.push(RunReport {
            folder,
            control,
            rows: run_rows,
        });
    }
    Ok(combine(runs, lag, day_sums, reject_counts, options.top))
}

/// The journal's fees and deactivation fees must sum to the settlement
/// file's columns (docs/JOURNAL.md, "What the journal proves"): the
/// report's fee chart and its fee totals then tell the same story.
fn check_journal(path: &Path, settlement: &SettlementSums, journal: &JournalSums) -> Result<()> {
    let fees: i128 = journal.fees.iter().map(|(_, f)| f.net_fen).sum();
    let checks = [
        ("fee", fees, settlement.columns[Column::Fees as usize]),
        (
            "deactivation fee",
            journal.deactivation_fees_fen,
            settlement.columns[Column::DeactivationFee as usize],
        ),
    ];
    for (what, posted, in_file) in checks {
        if posted != in_file {
            return Err(Error::input(
                path.display().to_string(),
                format!(
                    "the {what} postings sum to {} but the settlement file's column to {} (run settle verify on the folder)",
                    money::format_fen(posted),
                    money::format_fen(in_file)
                ),
            ));
        }
    }
    Ok(())
}

/// control.json's totals must be the sums of the run's settlement files
/// and must balance (RULES.md 3.7): the header shows them as the run's
/// proof, so a report of edited files is refused.
fn check_control(run: &RunFolder, control: &Control, columns: &[i128; 12]) -> Result<()> {
    let path = run.dir.join("control.json").display().to_string();
    for (key, column) in read::SUMMED_TOTALS {
        let total_at = read::TOTAL_KEYS.iter().position(|k| *k == key);
        let column_at = AMOUNT_COLUMNS.iter().position(|c| *c == column);
        let (total, summed) = (
            control.totals[total_at.expect("a total key")],
            columns[column_at.expect("a settlement column")],
        );
        if total != summed {
            return Err(Error::input(
                path,
                format!(
                    "totals.{key} is {} but the settlement files' {column} column sums to {} (run settle verify on the folder)",
                    money::format_fen(total),
                    money::format_fen(summed)
                ),
            ));
        }
    }
    let (came_in, went_out) = conservation(&control.totals);
    if !control.balanced || came_in != went_out {
        return Err(Error::input(
            path,
            format!(
                "the totals do not balance: {} came in, {} went out",
                money::format_fen(came_in),
                money::format_fen(went_out)
            ),
        ));
    }
    Ok(())
}

/// Both sides of RULES.md 3.7 from totals in the order of `TOTAL_KEYS`:
/// purchases − refunds − fees + adjustments + first carried_in, and
/// payouts + held − released + deactivation fees + last carried_out.
pub fn conservation(t: &[i128; 11]) -> (i128, i128) {
    let [
        purchases,
        refunds,
        fees,
        adjustments,
        carried_in_first,
        payouts,
        held,
        released,
        _forfeited,
        deactivation_fees,
        carried_out_last,
    ] = *t;
    (
        purchases - refunds - fees + adjustments + carried_in_first,
        payouts + held - released + deactivation_fees + carried_out_last,
    )
}

/// Turns the per-file sums into the report's figures.
fn combine(
    runs: Vec<RunReport>,
    lag: i32,
    day_sums: Vec<(Day, SettlementSums, JournalSums)>,
    reject_counts: HashMap<Box<str>, u64>,
    top: usize,
) -> ReportData {
    // Categories, largest net fees first.
    let mut by_category: HashMap<&str, CategoryTotal> = HashMap::new();
    for (_, _, journal) in &day_sums {
        for ((category, card), fees) in &journal.fees {
            let total = by_category.entry(category).or_default();
            match &**card {
                "debit" => total.debit_fen += fees.net_fen,
                "credit" => total.credit_fen += fees.net_fen,
                _ => total.other_fen += fees.net_fen,
            }
            total.purchases += fees.purchases;
        }
    }
    let mut categories: Vec<CategoryTotal> = by_category
        .into_iter()
        .map(|(name, total)| CategoryTotal {
            name: name.to_string(),
            ..total
        })
        .collect();
    categories.sort_by(|a, b| b.net_fen().cmp(&a.net_fen()).then(a.name.cmp(&b.name)));
    let category_at: HashMap<&str, usize> = categories
        .iter()
        .enumerate()
        .map(|(k, c)| (c.name.as_str(), k))
        .collect();

    // Every date from the first file's to the last's, receivables carried
    // across dates without a file.
    let mut days = Vec::new();
    if let (Some(first), Some(last)) = (day_sums.first(), day_sums.last()) {
        for date in first.0..=last.0 {
            days.push(DayFigures {
                date,
                category_fees_fen: vec![0; categories.len()],
                ..DayFigures::default()
            });
        }
    }
    let first_date = day_sums.first().map_or(0, |d| d.0);
    let mut merchants: HashMap<Box<str>, MerchantSums> = HashMap::new();
    for (date, settlement, journal) in day_sums {
        let day = &mut days[(date - first_date) as usize];
        day.rows = settlement.rows;
        day.txn_count = settlement.txn_count;
        day.columns = settlement.columns;
        for ((category, _), fees) in &journal.fees {
            day.category_fees_fen[category_at[&**category]] += fees.net_fen;
        }
        day.deactivations_taken = journal.deactivations_taken;
        day.deactivations_waived = journal.deactivations_waived;
        day.deposit_holds = journal.deposit_holds;
        day.deposit_releases = journal.deposit_releases;
        day.deposit_forfeits = journal.deposit_forfeits;
        for (id, sums) in settlement.merchants {
            merchants.entry(id).or_default().add(&sums);
        }
    }
    receivables(&runs, &mut days);

    let mut rejects: Vec<(String, u64)> = reject_counts
        .into_iter()
        .map(|(reason, count)| (reason.into_string(), count))
        .collect();
    rejects.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let merchants_with_rows = merchants.len() as u64;
    let mut ranked: Vec<(Box<str>, MerchantSums)> = merchants.into_iter().collect();
    let by_purchases = |a: &(Box<str>, MerchantSums), b: &(Box<str>, MerchantSums)| {
        b.1.purchases_fen
            .cmp(&a.1.purchases_fen)
            .then(a.0.as_bytes().cmp(b.0.as_bytes()))
    };
    if ranked.len() > top {
        ranked.select_nth_unstable_by(top, by_purchases);
        ranked.truncate(top);
    }
    ranked.sort_unstable_by(by_purchases);
    let top_merchants = ranked
        .into_iter()
        .map(|(id, sums)| (id.into_string(), sums))
        .collect();

    let mut totals = [0i128; 11];
    for run in &runs {
        for (total, figure) in totals.iter_mut().zip(run.control.totals) {
            *total += figure;
        }
    }
    let receivables_fen = runs.last().map_or(0, |r| r.control.receivables_fen);
    ReportData {
        runs,
        lag,
        days,
        categories,
        rejects,
        top_merchants,
        merchants_with_rows,
        totals,
        receivables_fen,
    }
}

/// What merchants owe at the end of each date. A settlement row moves its
/// merchant's balance from `carried_in` to `carried_out` (RULES.md 3.4),
/// and a merchant without a row keeps its balance, so the receivables
/// change on a date by Σ carried_in − Σ carried_out of its rows. Each run
/// is anchored on the receivables its control.json reports at its end
/// (which count balances carried in from an earlier state too): the
/// figure on a date is that end figure less the changes of the run's later
/// dates. Dates between runs keep the last figure.
fn receivables(runs: &[RunReport], days: &mut [DayFigures]) {
    let Some(first_date) = days.first().map(|d| d.date) else {
        return;
    };
    let change = |day: &DayFigures| day.column(Column::CarriedIn) - day.column(Column::CarriedOut);
    let mut owed = 0i128;
    let mut at = 0usize;
    for run in runs {
        let Some((&first, &last)) = run
            .folder
            .settlement_dates
            .first()
            .zip(run.folder.settlement_dates.last())
        else {
            continue;
        };
        let (from, to) = ((first - first_date) as usize, (last - first_date) as usize);
        for day in &mut days[at..from] {
            day.receivables_fen = owed;
        }
        let run_change: i128 = days[from..=to].iter().map(change).sum();
        owed = run.control.receivables_fen - run_change;
        for day in &mut days[from..=to] {
            owed += change(day);
            day.receivables_fen = owed;
        }
        at = to + 1;
    }
}
