//! `settle statement`: one merchant's statement (对账单) over one published
//! run folder or a chain of daily ones, as a self-contained HTML page or a
//! CSV file (docs/STATEMENT.md).
//!
//! This module owns the statement's figures: which settlement dates it
//! covers, the per-date and period totals, the deposit's and the
//! deactivation's story, and which adjustment corrects which charge. It
//! reads only published files (`read`), leaves every word and layout to
//! `render`, and must not compute money the engine did not publish: every
//! figure is a posting, a settlement column, a sum of them, or a value of a
//! posting's `source`. Amounts are integer fen; nothing here uses floating
//! point. The output is written whole or not at all.
#![forbid(unsafe_code)]

mod labels;
pub mod read;
mod render;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::money;
pub use read::{Kind, MerchantDay, Posting, RunFolder, SettlementRow};

/// The language of the statement's labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Chinese (the default).
    Zh,
    En,
}

/// What `settle statement` was asked for.
#[derive(Clone, Debug)]
pub struct StatementOptions {
    /// Run folders, in any order: they are sorted by their start.
    pub runs: Vec<PathBuf>,
    pub merchant: String,
    /// First settlement date shown; the chain's first when `None`.
    pub from: Option<Day>,
    /// Last settlement date shown; the chain's last when `None`.
    pub to: Option<Day>,
    pub lang: Lang,
    /// `*.html` or `*.csv`.
    pub out: PathBuf,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct StatementSummary {
    pub from: Day,
    pub to: Day,
    /// Settlement dates of the period with a row of the merchant.
    pub days: usize,
    pub payout_fen: i128,
}

/// The output formats, chosen by `--out`'s extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Html,
    Csv,
}

/// The deposit's fate as of the statement's last date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DepositOutcome {
    /// Still being collected.
    Collecting,
    /// Released on settlement date `date`: for volume reached on
    /// `reached_on`, or in the final settlement after `deactivated_on`.
    Released {
        date: Day,
        amount_fen: i64,
        reached_on: Option<Day>,
        deactivated_on: Option<Day>,
    },
    /// Forfeited on settlement date `date` (the window ended short).
    Forfeited { date: Day, amount_fen: i64 },
}

/// The deposit's story, from the `source` of the deposit postings up to
/// the statement's last date (docs/JOURNAL.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositStory {
    pub deposit_fen: Option<i64>,
    /// Held in total by the holds (what a release returns or a forfeit
    /// keeps).
    pub held_fen: i64,
    pub target_fen: Option<i64>,
    pub window: Option<(Day, Day)>,
    pub volume_fen: Option<i64>,
    /// Window business dates after the business date of the statement's
    /// last settlement date; `None` unless still collecting with a window.
    pub days_left: Option<i64>,
    pub outcome: DepositOutcome,
}

/// The deactivation fee, taken or waived, from its posting's `source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeactivationStory {
    pub date: Day,
    pub waived: bool,
    pub fee_fen: i64,
    pub activated_on: Option<String>,
    pub deactivated_on: Option<String>,
    pub days: Option<String>,
    pub return_window_days: Option<String>,
    pub purchases_seen: Option<String>,
}

/// A charge that a later credit adjustment of the same amount gives back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    /// The adjustment (settlement date, seq).
    pub adjustment: (Day, u32),
    pub charge: Posting,
}

/// Everything a statement shows, before words and layout.
#[derive(Clone, Debug)]
pub struct Statement {
    pub merchant: String,
    pub from: Day,
    pub to: Day,
    pub lag: i32,
    pub runs: Vec<String>,
    /// The merchant's settlement dates within the period.
    pub days: Vec<MerchantDay>,
    /// Column sums over `days`; `carried_in` is the first day's,
    /// `carried_out` the last day's, and `proceeds` follows from them.
    pub totals: SettlementRow,
    pub deposit: Option<DepositStory>,
    pub deactivation: Option<DeactivationStory>,
    pub corrections: Vec<Correction>,
}

/// Builds the statement and writes it to `options.out`. Bad input is an
/// `Error::Usage` (exit 2) and nothing is written.
pub fn statement(options: &StatementOptions) -> Result<StatementSummary> {
    let format = output_format(&options.out)?;
    let statement = build(options)?;
    let bytes = match format {
        Format::Html => render::html(&statement, options.lang)?,
        Format::Csv => render::csv(&statement).into_bytes(),
    };
    write_atomically(&options.out, &bytes)?;
    Ok(StatementSummary {
        from: statement.from,
        to: statement.to,
        days: statement.days.len(),
        payout_fen: statement.totals.payout_fen,
    })
}

fn output_format(out: &Path) -> Result<Format> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("html") => Ok(Format::Html),
        Some("csv") => Ok(Format::Csv),
        _ => Err(Error::Usage(format!(
            "--out {} must end in .html or .csv",
            out.display()
        ))),
    }
}

/// Reads the runs and computes the statement, writing nothing.
pub fn build(options: &StatementOptions) -> Result<Statement> {
    if options.runs.is_empty() {
        return Err(Error::Usage(
            "statement needs at least one run folder".into(),
        ));
    }
    let mut runs = options
        .runs
        .iter()
        .map(|dir| read::read_run(dir))
        .collect::<Result<Vec<_>>>()?;
    read::check_chain(&mut runs)?;
    let lag = read::infer_lag(&runs)?;
    let (first, last) = read::owned_dates(&runs, lag).expect("at least one run");
    let from = options.from.unwrap_or(first);
    let to = options.to.unwrap_or(last);
    let range = format!(
        "{}..{}",
        calendar::format_date(first),
        calendar::format_date(last)
    );
    for (flag, day) in [("--from", from), ("--to", to)] {
        if day < first || day > last {
            return Err(Error::Usage(format!(
                "{flag} {} is outside the settlement dates of the runs ({range})",
                calendar::format_date(day)
            )));
        }
    }
    if from > to {
        return Err(Error::Usage(format!(
            "--from {} is after --to {}",
            calendar::format_date(from),
            calendar::format_date(to)
        )));
    }
    let merchant = options.merchant.as_str();
    let mut all_days = Vec::new();
    for run in &runs {
        all_days.extend(read::read_merchant(run, merchant)?);
    }
    if all_days.is_empty() && !runs.iter().any(|run| read::state_knows(&run.dir, merchant)) {
        return Err(Error::Usage(format!(
            "unknown merchant {merchant}: no settlement row, posting or state of it in the runs given"
        )));
    }
    let known: Vec<&Posting> = read::all_postings(&all_days)
        .filter(|p| p.date <= to)
        .collect();
    let days: Vec<MerchantDay> = all_days
        .iter()
        .filter(|d| (from..=to).contains(&d.date))
        .cloned()
        .collect();
    check_carries(merchant, &days)?;
    Ok(Statement {
        merchant: merchant.to_string(),
        from,
        to,
        lag,
        runs: runs.iter().map(RunFolder::name).collect(),
        totals: totals(&days),
        deposit: deposit_story(&known, to - lag),
        deactivation: deactivation_story(&known),
        corrections: corrections(&known, from),
        days,
    })
}

fn totals(days: &[MerchantDay]) -> SettlementRow {
    let mut amounts = [0i128; 12];
    let mut txn_count = 0;
    for day in days {
        txn_count += day.row.txn_count;
        for (sum, amount) in amounts.iter_mut().zip(day.row.amounts()) {
            *sum += amount;
        }
    }
    let mut t = SettlementRow::with_amounts(0, 0, txn_count, amounts);
    t.carried_in_fen = days.first().map_or(0, |d| d.row.carried_in_fen);
    t.carried_out_fen = days.last().map_or(0, |d| d.row.carried_out_fen);
    // The period's proceeds, as RULES.md 3.7 counts them over a run: a
    // balance carried between two dates of the period is not counted
    // twice, so the period conserves (proceeds = payouts + held − released
    // + deactivation fees + last carried_out).
    t.proceeds_fen =
        t.purchases_fen - t.refunds_fen - t.fees_fen + t.adjustments_fen + t.carried_in_fen;
    t
}

/// Each date's `carried_in` is the previous date's `carried_out` (RULES.md
/// 3.4; across runs through their state): what makes the period's totals
/// conserve money as a run's do.
fn check_carries(merchant: &str, days: &[MerchantDay]) -> Result<()> {
    for pair in days.windows(2) {
        if pair[1].row.carried_in_fen != pair[0].row.carried_out_fen {
            return Err(Error::input(
                format!("settlement-{}.csv", calendar::format_date(pair[1].date)),
                format!(
                    "{merchant} carries in {} but its settlement of {} carried out {}",
                    money::format_fen(pair[1].row.carried_in_fen),
                    calendar::format_date(pair[0].date),
                    money::format_fen(pair[0].row.carried_out_fen)
                ),
            ));
        }
    }
    Ok(())
}

fn source_fen(posting: &Posting, key: &str) -> Option<i64> {
    let text = posting.source_value(key)?;
    money::parse_amount_fen(text.as_bytes(), true).ok()
}

fn source_day(posting: &Posting, key: &str) -> Option<Day> {
    calendar::parse_date(posting.source_value(key)?.as_bytes())
}

fn source_window(posting: &Posting) -> Option<(Day, Day)> {
    let (first, last) = posting.source_value("window")?.split_once("..")?;
    Some((
        calendar::parse_date(first.as_bytes())?,
        calendar::parse_date(last.as_bytes())?,
    ))
}

/// The deposit as of business date `last_business_day` (the statement's
/// last settlement date less the lag), from the deposit postings on or
/// before the statement's last date. `None` when there is none.
fn deposit_story(postings: &[&Posting], last_business_day: Day) -> Option<DepositStory> {
    let mut story: Option<DepositStory> = None;
    for posting in postings {
        let is_deposit = matches!(
            posting.kind,
            Kind::DepositHold
                | Kind::DepositRelease
                | Kind::DepositReleaseFinal
                | Kind::DepositForfeit
        );
        if !is_deposit {
            continue;
        }
        let s = story.get_or_insert(DepositStory {
            deposit_fen: None,
            held_fen: 0,
            target_fen: None,
            window: None,
            volume_fen: None,
            days_left: None,
            outcome: DepositOutcome::Collecting,
        });
        s.deposit_fen = source_fen(posting, "deposit").or(s.deposit_fen);
        s.target_fen = source_fen(posting, "target").or(s.target_fen);
        s.window = source_window(posting).or(s.window);
        s.volume_fen = source_fen(posting, "volume").or(s.volume_fen);
        match posting.kind {
            Kind::DepositHold => {
                s.held_fen = source_fen(posting, "held").unwrap_or(s.held_fen);
            }
            Kind::DepositRelease | Kind::DepositReleaseFinal => {
                s.outcome = DepositOutcome::Released {
                    date: posting.date,
                    amount_fen: posting.amount_fen,
                    reached_on: source_day(posting, "reached_on"),
                    deactivated_on: source_day(posting, "deactivated_on"),
                };
            }
            Kind::DepositForfeit => {
                s.outcome = DepositOutcome::Forfeited {
                    date: posting.date,
                    amount_fen: posting.amount_fen,
                };
            }
            _ => unreachable!("only deposit kinds reach here"),
        }
    }
    if let Some(s) = story.as_mut()
        && s.outcome == DepositOutcome::Collecting
    {
        s.days_left = s
            .window
            .map(|(_, last)| i64::from((last - last_business_day).max(0)));
    }
    story
}

fn deactivation_story(postings: &[&Posting]) -> Option<DeactivationStory> {
    let posting = postings
        .iter()
        .rev()
        .find(|p| matches!(p.kind, Kind::DeactivationFee | Kind::DeactivationFeeWaived))?;
    let text = |key: &str| posting.source_value(key).map(str::to_string);
    Some(DeactivationStory {
        date: posting.date,
        waived: posting.kind == Kind::DeactivationFeeWaived,
        fee_fen: -posting.amount_fen,
        activated_on: text("activated_on"),
        deactivated_on: text("deactivated_on"),
        days: text("days"),
        return_window_days: text("return_window_days"),
        purchases_seen: text("purchases_seen"),
    })
}

/// Pairs each credit adjustment of the period with the latest charge on
/// or before its settlement date of exactly the same amount that no other
/// adjustment took: a deactivation fee, a fee posting or a debit
/// adjustment. Documented as a heuristic in docs/STATEMENT.md: the journal
/// does not link an adjustment to what it corrects.
fn corrections(postings: &[&Posting], from: Day) -> Vec<Correction> {
    let mut taken = vec![false; postings.len()];
    let mut found = Vec::new();
    for (at, adjustment) in postings.iter().enumerate() {
        if adjustment.kind != Kind::Adjustment
            || adjustment.amount_fen <= 0
            || adjustment.date < from
        {
            continue;
        }
        let charge = (0..postings.len()).rev().find(|&k| {
            let p = postings[k];
            k != at
                && !taken[k]
                && p.date <= adjustment.date
                && p.amount_fen == -adjustment.amount_fen
                && matches!(p.kind, Kind::DeactivationFee | Kind::Fee | Kind::Adjustment)
        });
        if let Some(k) = charge {
            taken[k] = true;
            found.push(Correction {
                adjustment: (adjustment.date, adjustment.seq),
                charge: postings[k].clone(),
            });
        }
    }
    found
}

/// Writes `bytes` to a temporary file beside `out`, syncs it, and renames
/// it onto `out`.
pub(crate) fn write_atomically(out: &Path, bytes: &[u8]) -> Result<()> {
    let name = out
        .file_name()
        .ok_or_else(|| Error::Usage(format!("--out {} names no file", out.display())))?;
    let temp = out.with_file_name(format!(
        ".{}.settle-tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, out)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Error::io(format!("writing {}", out.display()), e)
    })
}
