//! `settle diff RUN_A RUN_B`: what changes between two published runs of
//! the same inputs under two configurations (docs/DIFF.md). The figures
//! come out as a plain `Diff` (totals, by category and card, by date, by
//! merchant, the configuration keys that differ) that any renderer can
//! use: `table` writes it for a terminal, `export` as JSON or as one file
//! per breakdown.
//!
//! This module owns the comparison: which runs may be compared, reading
//! them in parallel, the checks that their files agree with each other,
//! and the ranking of merchants. It reads only published files (`read`,
//! `settlement`, `journal`) and the two configurations (`config_keys`); it
//! must not recompute a fee or a balance. Amounts are integer fen and a
//! delta is B − A, exact; nothing here uses floating point.
#![forbid(unsafe_code)]

mod config_keys;
pub mod export;
mod journal;
pub mod read;
mod settlement;
pub mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::ingest::Source;
use crate::ledger::AMOUNT_COLUMNS;
use crate::money::{self, Rounding};
pub use journal::CategorySums;
use read::{MONEY_TOTALS, RunControl};
use settlement::{Acc, Entry};

/// What `settle diff` was asked for.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    pub run_a: PathBuf,
    pub run_b: PathBuf,
    /// Compare runs whose inputs or dates differ (refused otherwise).
    pub allow_different_inputs: bool,
}

/// A figure in A and in B. Its delta is B − A, exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    pub a: i128,
    pub b: i128,
}

impl Pair {
    pub fn delta(&self) -> i128 {
        self.b - self.a
    }

    /// The change as a percentage of A with two decimals, in hundredths
    /// of a percent (basis points: −816 is −8.16%), rounded half up (a
    /// half basis point away from zero); `None` when A is zero.
    pub fn delta_basis_points(&self) -> Option<i128> {
        if self.a == 0 {
            return None;
        }
        let points = money::div_round(self.delta() * 10_000, self.a.abs(), Rounding::HalfUp);
        Some(points)
    }
}

/// Settlement rows summed: how many, their `txn_count`, and their amount
/// columns in the order of `AMOUNT_COLUMNS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    pub rows: u64,
    pub txn_count: u64,
    pub amounts: [i128; 12],
}

impl Sums {
    fn add(&mut self, acc: &Acc) {
        self.rows += u64::from(acc.rows);
        self.txn_count += acc.txn_count;
        for (sum, amount) in self.amounts.iter_mut().zip(acc.amounts) {
            *sum += i128::from(amount);
        }
    }

    /// The sum of the settlement column `column` (one of `AMOUNT_COLUMNS`).
    pub fn amount(&self, column: &str) -> i128 {
        let at = AMOUNT_COLUMNS.iter().position(|c| *c == column);
        self.amounts[at.expect("a settlement column")]
    }
}

/// Whether a total counts fen or things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Fen,
    Count,
}

/// One line of the totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Total {
    pub name: &'static str,
    pub unit: Unit,
    pub pair: Pair,
}

/// One (category, card) in both runs, from the journals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryDelta {
    pub category: String,
    pub card: String,
    pub purchases_count: Pair,
    pub purchases_fen: Pair,
    pub fees_fen: Pair,
}

/// One settlement date in both runs (zeros where a run has no file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateDelta {
    pub date: Day,
    pub a: Sums,
    pub b: Sums,
}

/// One merchant over all dates in both runs (zeros where it has no row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantDelta {
    pub merchant_id: String,
    pub a: Sums,
    pub b: Sums,
}

impl MerchantDelta {
    pub fn pair(&self, column: &str) -> Pair {
        Pair {
            a: self.a.amount(column),
            b: self.b.amount(column),
        }
    }
}

/// One configuration key that differs; `None` where a side lacks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

impl std::fmt::Display for KeyChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "(absent)".into());
        write!(f, "{}: {} -> {}", self.key, shown(&self.a), shown(&self.b))
    }
}

/// How the two configurations differ.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChanges {
    /// Both runs read a configuration with the same SHA-256.
    pub same_digest: bool,
    /// The keys that differ, by key.
    pub keys: Vec<KeyChange>,
    /// Why keys cannot be listed (a file gone or changed since the run),
    /// or that none differs although the files do.
    pub notes: Vec<String>,
}

/// One run as the comparison names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSide {
    pub dir: PathBuf,
    pub config_path: String,
    pub config_sha256: String,
    pub start: Day,
    pub horizon: Day,
    pub through: Option<Day>,
}

/// Everything `settle diff` found, for a renderer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    pub a: RunSide,
    pub b: RunSide,
    /// How the inputs differ (empty when they are the same; only with
    /// `allow_different_inputs` otherwise).
    pub input_differences: Vec<String>,
    pub config: ConfigChanges,
    /// Money totals (control.json's, checked against the settlement
    /// files), then counts.
    pub totals: Vec<Total>,
    /// By category name, then debit, credit, any other card.
    pub by_category: Vec<CategoryDelta>,
    /// By settlement date.
    pub by_date: Vec<DateDelta>,
    /// Every merchant whose sums differ, ranked: largest |payout delta|
    /// first, then largest |fees delta|, then `merchant_id` bytewise.
    pub merchants: Vec<MerchantDelta>,
    /// Merchants with a settlement row in either run.
    pub merchants_compared: u64,
}

/// Compares the published runs `options.run_a` and `options.run_b`.
pub fn diff(options: &DiffOptions) -> Result<Diff> {
    let a = read::read_control(&options.run_a)?;
    let b = read::read_control(&options.run_b)?;
    let input_differences = read::input_differences(&a, &b);
    if !input_differences.is_empty() && !options.allow_different_inputs {
        return Err(Error::Usage(format!(
            "{} and {} were run over different inputs ({}): settle diff compares the same history under two configurations; pass --allow-different-inputs to compare them anyway",
            a.dir().display(),
            b.dir().display(),
            input_differences.join("; ")
        )));
    }
    let config = config_keys::compare(&a.config, &b.config);
    let files = open_files(&a, &b)?;
    let (merged, journals) = rayon::join(|| read_settlements(&files), || read_journals(&files));
    let merged = merged?;
    let journals = journals?;
    check_journals(&files, &merged.dates, &journals)?;
    let date_totals = check_totals(&a, &b, &merged.dates)?;
    let mut totals: Vec<Total> = MONEY_TOTALS
        .iter()
        .enumerate()
        .map(|(k, (name, _))| Total {
            name,
            unit: Unit::Fen,
            pair: Pair {
                a: a.totals_fen[k],
                b: b.totals_fen[k],
            },
        })
        .collect();
    let with_rows = |side: usize| {
        let rows = |e: &Entry| if side == 0 { e.a.rows } else { e.b.rows };
        merged.merchants.iter().filter(|e| rows(e) > 0).count() as i128
    };
    for (name, a_count, b_count) in [
        (
            "settlement_rows",
            i128::from(date_totals.0.rows),
            i128::from(date_totals.1.rows),
        ),
        ("merchants", with_rows(0), with_rows(1)),
        (
            "transactions",
            i128::from(date_totals.0.txn_count),
            i128::from(date_totals.1.txn_count),
        ),
        (
            "rows_accepted",
            i128::from(a.rows_accepted),
            i128::from(b.rows_accepted),
        ),
        (
            "rows_rejected",
            i128::from(a.rows_rejected),
            i128::from(b.rows_rejected),
        ),
    ] {
        totals.push(Total {
            name,
            unit: Unit::Count,
            pair: Pair {
                a: a_count,
                b: b_count,
            },
        });
    }
    let merchants_compared = merged.merchants.len() as u64;
    Ok(Diff {
        a: side(&a),
        b: side(&b),
        input_differences,
        config,
        totals,
        by_category: by_category(journals),
        by_date: merged
            .dates
            .into_iter()
            .map(|(date, a, b)| DateDelta { date, a, b })
            .collect(),
        merchants: rank(merged.merchants),
        merchants_compared,
    })
}

fn side(run: &RunControl) -> RunSide {
    RunSide {
        dir: run.dir().to_path_buf(),
        config_path: run.config.path.clone(),
        config_sha256: run.config.sha256.clone(),
        start: run.folder.start,
        horizon: run.folder.horizon,
        through: run.through,
    }
}

/// The files of one settlement date: each run's settlement file, mapped
/// (`None` where the run has no file of that date), and its journal's path.
struct DateFiles {
    date: Day,
    settlement: [Option<(PathBuf, Source)>; 2],
    journal: [Option<PathBuf>; 2],
}

fn open(path: &Path) -> Result<Source> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::Usage(format!("{}: the path is not UTF-8", path.display())))?;
    let source = Source::open(text)?;
    // Every byte is read once, front to back: mapping the pages in one call
    // saves a page fault per 4 KiB.
    source.populate(0..source.len());
    Ok(source)
}

/// Maps every settlement file of both runs, by date, and checks that each
/// has its journal: a run from before the journal cannot be broken down
/// by category.
fn open_files(a: &RunControl, b: &RunControl) -> Result<Vec<DateFiles>> {
    let mut by_date: BTreeMap<Day, DateFiles> = BTreeMap::new();
    for (k, run) in [a, b].into_iter().enumerate() {
        for &date in &run.folder.settlement_dates {
            let day = calendar::format_date(date);
            let settlement = run.dir().join(format!("settlement-{day}.csv"));
            let journal = run.dir().join(format!("journal-{day}.csv"));
            if !journal.is_file() {
                return Err(Error::Usage(format!(
                    "{} has no journal: {} is there but {} is missing (runs before the journal cannot be compared by category)",
                    run.dir().display(),
                    settlement.display(),
                    journal.display()
                )));
            }
            let source = open(&settlement)?;
            let files = by_date.entry(date).or_insert_with(|| DateFiles {
                date,
                settlement: [None, None],
                journal: [None, None],
            });
            files.settlement[k] = Some((settlement, source));
            files.journal[k] = Some(journal);
        }
    }
    Ok(by_date.into_values().collect())
}

/// Dates (with each run's sums) and merchants, as the settlement files of
/// some dates give them.
#[derive(Default)]
struct Merged<'a> {
    dates: Vec<(Day, Sums, Sums)>,
    merchants: Vec<Entry<'a>>,
}

impl<'a> Merged<'a> {
    fn combine(mut self, other: Merged<'a>) -> Result<Merged<'a>> {
        self.dates.extend(other.dates);
        settlement::merge(&mut self.merchants, other.merchants).map_err(overflow)?;
        Ok(self)
    }
}

fn overflow(settlement::Overflow(merchant): settlement::Overflow) -> Error {
    Error::Usage(format!(
        "merchant {merchant}: its settlement figures summed over the runs leave 64-bit fen"
    ))
}

/// Reads the settlement files date by date in parallel, each date's two
/// files merge-joined, and folds their merchants into per-merchant sums.
fn read_settlements(files: &[DateFiles]) -> Result<Merged<'_>> {
    let mut merged = files
        .par_iter()
        .map(|files| {
            let file = |k: usize| match &files.settlement[k] {
                Some((path, source)) => settlement::File {
                    path,
                    bytes: source,
                },
                None => settlement::File {
                    path: Path::new(""),
                    bytes: &[],
                },
            };
            settlement::read_pair(files.date, &file(0), &file(1))
        })
        .try_fold(Merged::default, |mut merged, pair| -> Result<Merged<'_>> {
            let pair = pair?;
            merged.dates.push((pair.date, pair.a, pair.b));
            settlement::merge(&mut merged.merchants, pair.merchants).map_err(overflow)?;
            Ok(merged)
        })
        .try_reduce(Merged::default, Merged::combine)?;
    merged.dates.sort_by_key(|(date, _, _)| *date);
    Ok(merged)
}

/// One journal's sums: its date's place, its run (0 = A, 1 = B).
type JournalSums = (usize, usize, Vec<CategorySums>);

/// Reads every journal in parallel (each mapped, summed, and released).
fn read_journals(files: &[DateFiles]) -> Result<Vec<JournalSums>> {
    let jobs: Vec<(usize, usize, &Path)> = files
        .iter()
        .enumerate()
        .flat_map(|(at, files)| {
            files
                .journal
                .iter()
                .enumerate()
                .filter_map(move |(k, path)| path.as_deref().map(|path| (at, k, path)))
        })
        .collect();
    jobs.into_par_iter()
        .map(|(at, k, path)| {
            let source = open(path)?;
            Ok((at, k, journal::read_categories(path, &source)?))
        })
        .collect()
}

/// Each journal's purchases and fees must be its settlement file's: a
/// journal that does not sum to its rows was not read right, or does not
/// belong to them.
fn check_journals(
    files: &[DateFiles],
    dates: &[(Day, Sums, Sums)],
    journals: &[JournalSums],
) -> Result<()> {
    for (at, k, sums) in journals {
        let (_, sums_a, sums_b) = &dates[*at];
        let row_sums = if *k == 0 { sums_a } else { sums_b };
        let path = files[*at].journal[*k].as_deref().expect("a journal read");
        for (column, posted) in [
            (
                "purchases",
                sums.iter().map(|s| s.purchases_fen).sum::<i128>(),
            ),
            ("fees", sums.iter().map(|s| s.fees_fen).sum::<i128>()),
        ] {
            let in_rows = row_sums.amount(column);
            if posted != in_rows {
                return Err(Error::input(
                    path.display().to_string(),
                    format!(
                        "its postings give {column} {} but the settlement file of its date sums to {}",
                        money::format_fen(posted),
                        money::format_fen(in_rows)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The settlement files' sums over all dates must be control.json's
/// totals; returns those sums for A and B.
fn check_totals(
    a: &RunControl,
    b: &RunControl,
    dates: &[(Day, Sums, Sums)],
) -> Result<(Sums, Sums)> {
    let mut sums = (Sums::default(), Sums::default());
    for (_, x, y) in dates {
        for (sum, day) in [(&mut sums.0, x), (&mut sums.1, y)] {
            sum.rows += day.rows;
            sum.txn_count += day.txn_count;
            for (total, amount) in sum.amounts.iter_mut().zip(day.amounts) {
                *total += amount;
            }
        }
    }
    for (run, run_sums) in [(a, &sums.0), (b, &sums.1)] {
        for (k, (name, column)) in MONEY_TOTALS.iter().enumerate() {
            let Some(column) = column else { continue };
            let summed = run_sums.amount(column);
            if summed != run.totals_fen[k] {
                return Err(run.bad(format!(
                    "totals.{name} is {} but the settlement files sum to {}",
                    money::format_fen(run.totals_fen[k]),
                    money::format_fen(summed)
                )));
            }
        }
    }
    Ok(sums)
}

/// The journals' sums over all dates, by (category, card), in both runs.
fn by_category(journals: Vec<JournalSums>) -> Vec<CategoryDelta> {
    let card_rank = |card: &str| match card {
        "debit" => 0,
        "credit" => 1,
        _ => 2,
    };
    let mut pairs: BTreeMap<(String, u8, String), [CategorySums; 2]> = BTreeMap::new();
    for (_, k, sums) in journals {
        for sum in sums {
            let key = (sum.category.clone(), card_rank(&sum.card), sum.card.clone());
            let entry = &mut pairs.entry(key).or_default()[k];
            entry.purchases_count += sum.purchases_count;
            entry.purchases_fen += sum.purchases_fen;
            entry.fees_fen += sum.fees_fen;
        }
    }
    pairs
        .into_iter()
        .map(|((category, _, card), [a, b])| CategoryDelta {
            category,
            card,
            purchases_count: Pair {
                a: i128::from(a.purchases_count),
                b: i128::from(b.purchases_count),
            },
            purchases_fen: Pair {
                a: a.purchases_fen,
                b: b.purchases_fen,
            },
            fees_fen: Pair {
                a: a.fees_fen,
                b: b.fees_fen,
            },
        })
        .collect()
}

/// The merchants whose sums differ, ranked by |payout delta|, then |fees
/// delta| (both largest first), then `merchant_id` bytewise: a total
/// order, so the ranking never depends on how the work was split.
fn rank(merchants: Vec<Entry<'_>>) -> Vec<MerchantDelta> {
    let mut changed: Vec<(Vec<u8>, MerchantDelta)> = merchants
        .into_iter()
        .filter(|entry| entry.a != entry.b)
        .map(|entry| {
            let delta = MerchantDelta {
                merchant_id: String::from_utf8_lossy(&entry.id).into_owned(),
                a: entry.a.widen(),
                b: entry.b.widen(),
            };
            (entry.id.into_owned(), delta)
        })
        .collect();
    changed.sort_by(|(id_x, x), (id_y, y)| {
        let key = |m: &MerchantDelta| {
            (
                m.pair("payout").delta().unsigned_abs(),
                m.pair("fees").delta().unsigned_abs(),
            )
        };
        key(y).cmp(&key(x)).then_with(|| id_x.cmp(id_y))
    });
    changed.into_iter().map(|(_, delta)| delta).collect()
}
