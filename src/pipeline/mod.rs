//! The run: parse in parallel chunks, link, aggregate per (merchant,
//! business date), settle merchants in parallel, and check conservation.
//!
//! This module owns the order of the stages and the data handed between
//! them. It must not format or write output files.

mod aggregate;
pub mod groups;
use aggregate::{ByMerchant, adjustments_by_merchant, aggregate, row_totals};
pub mod carry;
pub mod link;
pub mod parse;
mod references;
pub mod stats;
mod streams;

use rayon::prelude::*;

use crate::calendar::Day;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::ingest::adjustments::{self, Adjustment};
use crate::ingest::progress::{Phase, Progress};
use crate::ingest::txn::RowContext;
use crate::ingest::{Merchants, Reject};
use crate::ledger::{self, DayTotals, MerchantInput, MerchantState, Row, RowNote, Span};
use crate::money;
use crate::state::PriorState;
pub use groups::Groups;
pub use link::{Linked, Verdicts};
pub use parse::{Input, Parsed, TxnFile};

/// The inputs of one run, already opened and with headers checked.
pub struct Plan<'a> {
    pub settings: &'a Settings,
    pub merchants: &'a Merchants,
    pub txn_files: Vec<TxnFile<'a>>,
    /// The adjustments file's bytes and its name for messages.
    pub adjustments: Option<(&'a [u8], &'a str)>,
    pub through: Option<Day>,
    /// Target bytes per parse chunk (`limits::CHUNK_BYTES_TARGET` in
    /// production; tests use tiny chunks to exercise the boundaries).
    pub chunk_bytes: usize,
    /// The state the run starts from (`--state-in`).
    pub prior: Option<&'a PriorState>,
    /// Whether rows keep their `terminal_id`, which only the detail files
    /// show.
    pub terminal_ids: bool,
    /// Whether the journal posts each transaction (`--detail`) rather than
    /// groups of them.
    pub journal_per_transaction: bool,
    /// Counters for a progress display; never read back by the run.
    pub progress: Option<&'a Progress>,
    /// Step 3 judged outside the run (stream mode, docs/STREAM.md); `None`
    /// for a run that judges its own rows.
    pub duplicates: Option<&'a Verdicts>,
}

/// Rows read, accepted and rejected in one input file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileCounts {
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
}

/// The totals of RULES.md 3.7.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub purchases_fen: i128,
    pub refunds_fen: i128,
    pub fees_fen: i128,
    pub adjustments_fen: i128,
    pub carried_in_first_fen: i128,
    pub payouts_fen: i128,
    pub deposit_held_fen: i128,
    pub deposit_released_fen: i128,
    pub deposit_forfeited_fen: i128,
    pub deactivation_fees_fen: i128,
    pub carried_out_last_fen: i128,
}

/// Everything a run computed, ready to be written.
pub struct Settled {
    pub parsed: Parsed,
    pub linked: Linked,
    /// Settlement rows by merchant index, then settlement date.
    pub rows: Vec<Vec<Row>>,
    /// The ledger's note for each row, in the same places as `rows`.
    pub notes: Vec<Vec<RowNote>>,
    /// The accepted transactions summed per (merchant, business date,
    /// posting group): the journal's figures.
    pub groups: Groups,
    /// Rejected transaction rows in file order, then adjustment rows.
    pub rejects: Vec<Reject>,
    pub span: Option<Span>,
    pub start: Option<Day>,
    pub horizon: Option<Day>,
    pub txn_counts: Vec<FileCounts>,
    pub adjustment_counts: Option<FileCounts>,
    /// Accepted adjustments, in line order.
    pub adjustments: Vec<Adjustment>,
    pub totals: Totals,
    /// Each merchant's state at the end of the run, by merchant index.
    pub closing: Vec<MerchantState>,
    /// Merchants of the starting state that master data no longer lists:
    /// carried unchanged, so that no balance is dropped.
    pub carried_over: Vec<(String, MerchantState)>,
    pub times: stats::StageTimes,
    pub latencies: stats::ChunkLatencies,
}

impl Settled {
    /// Frees the per-transaction data once nothing needs it (the detail
    /// files are the only output that reads it), so that rendering does not
    /// hold the whole parsed input.
    pub fn drop_transactions(&mut self) {
        self.parsed.txns = Vec::new();
        self.parsed.arenas = Vec::new();
        self.linked = Linked::empty();
    }
}

/// A run parsed and linked, its dates fixed, nothing settled yet: all
/// that the id index of its end state needs, so that the index can be
/// written (and its fsync started) while the run settles.
pub struct Ingested {
    pub parsed: Parsed,
    pub linked: Linked,
    /// The run's horizon, or the starting state's when the run has none.
    pub horizon: Option<Day>,
    start: Option<Day>,
    span: Option<Span>,
    /// Parse and link so far; settling adds its own.
    pub times: stats::StageTimes,
    latencies: stats::ChunkLatencies,
}

impl Ingested {
    /// The first business date the run covers (RULES.md 2).
    pub fn start(&self) -> Option<Day> {
        self.start
    }

    /// Sets the run's start, and with it its span, to `start`: a stream
    /// partition sees only some merchants' rows, and the run's start is
    /// the earliest over all partitions (docs/STREAM.md).
    pub fn set_start(&mut self, start: Option<Day>) {
        self.start = start;
        self.span = match (start, self.horizon) {
            (Some(start), Some(horizon)) if start <= horizon => Some(Span { start, horizon }),
            _ => None,
        };
    }
}

/// Accepted rows as the stages after linking see them, for unit tests:
/// each `Txn` is accepted, with its fee, in category 0, neither voided nor
/// capped.
#[cfg(test)]
pub(crate) fn accepted_rows(
    txns: Vec<crate::ingest::txn::Txn>,
    fee_fen: Vec<i64>,
) -> (Parsed, Linked) {
    let count = txns.len();
    assert_eq!(fee_fen.len(), count, "a fee per row");
    let parsed = Parsed {
        txns,
        arenas: Vec::new(),
        rejects: Vec::new(),
        rows_read_per_file: vec![count as u64],
        streamed: Vec::new(),
    };
    let mut linked = Linked::empty();
    linked.rejected = vec![None; count];
    linked.voided = vec![false; count];
    linked.capped = vec![false; count];
    linked.category = vec![0; count];
    linked.purchase_of = vec![u32::MAX; count];
    linked.fee_fen = fee_fen;
    (parsed, linked)
}

/// Runs every stage and checks conservation. Nothing is written here.
pub fn run(plan: &Plan) -> Result<Settled> {
    let ingested = ingest(plan)?;
    settle(plan, ingested)
}

fn row_context<'a>(plan: &Plan<'a>) -> RowContext<'a> {
    RowContext {
        settings: plan.settings,
        merchants: plan.merchants,
        through: plan.through,
        state_horizon: plan.prior.and_then(|prior| prior.horizon),
        terminal_ids: plan.terminal_ids,
    }
}

/// Parses and links every row and fixes the run's dates (RULES.md 2).
pub fn ingest(plan: &Plan) -> Result<Ingested> {
    let settings = plan.settings;
    let context = row_context(plan);
    let state_horizon = context.state_horizon;
    let mut times = stats::StageTimes::default();
    let latencies = stats::ChunkLatencies::default();
    let parsed = times.time("parse", || {
        parse::parse_files(
            &plan.txn_files,
            &context,
            plan.chunk_bytes,
            &latencies,
            plan.progress,
        )
    })?;
    if let Some(progress) = plan.progress {
        progress.set_phase(Phase::Linking);
    }
    let prior_index = plan.prior.map(|prior| &prior.index);
    let linked = times.time("link", || {
        link::link_judged(
            &parsed,
            settings,
            plan.merchants,
            prior_index,
            plan.duplicates,
        )
    })?;

    // The run's dates (RULES.md 2).
    let accepted_days = || {
        parsed
            .txns
            .iter()
            .zip(&linked.rejected)
            .filter(|(_, rejected)| rejected.is_none())
            .map(|(t, _)| t.business_day)
    };
    let horizon = plan.through.or_else(|| accepted_days().max());
    // A run from a state starts the day after its horizon (RULES.md 2).
    let start = match state_horizon {
        Some(day) => Some(day + 1),
        None => accepted_days().min(),
    };
    let span = match (start, horizon) {
        (Some(start), Some(horizon)) if start <= horizon => Some(Span { start, horizon }),
        _ => None,
    };
    Ok(Ingested {
        parsed,
        linked,
        horizon: horizon.or(state_horizon),
        start,
        span,
        times,
        latencies,
    })
}

/// Aggregates, settles every merchant and checks conservation.
pub fn settle(plan: &Plan, ingested: Ingested) -> Result<Settled> {
    let settings = plan.settings;
    let context = row_context(plan);
    let Ingested {
        mut parsed,
        mut linked,
        horizon,
        start,
        span,
        mut times,
        latencies,
    } = ingested;
    let lag = settings.settlement_lag_days;
    let (adjustments, adjustment_counts, adjustment_rejects) = match plan.adjustments {
        None => (Vec::new(), None, Vec::new()),
        Some((bytes, name)) => {
            let owned = span.map(|s| (s.start + lag, s.horizon + lag));
            let file_index = plan.txn_files.len() as u32;
            let parsed_adjustments =
                adjustments::parse(bytes, name, file_index, plan.merchants, owned)?;
            let counts = FileCounts {
                rows_read: parsed_adjustments.rows_read,
                rows_accepted: parsed_adjustments.accepted.len() as u64,
                rows_rejected: parsed_adjustments.rejects.len() as u64,
            };
            (
                parsed_adjustments.accepted,
                Some(counts),
                parsed_adjustments.rejects,
            )
        }
    };

    let merchant_count = plan.merchants.len();
    let groups = times
        .time("groups", || {
            Groups::of(
                &parsed,
                &linked,
                merchant_count,
                plan.journal_per_transaction,
            )
        })
        .map_err(|overflow| {
            too_large(
                plan,
                overflow.merchant,
                "a posting group of business date",
                overflow.day,
            )
        })?;
    let (days, purchased) = times
        .time("aggregate", || aggregate(&groups, merchant_count))
        .map_err(|overflow| {
            too_large(
                plan,
                overflow.merchant,
                "a total of business date",
                overflow.day,
            )
        })?;
    let adjustment_days = ByMerchant::new(&adjustments_by_merchant(&adjustments), merchant_count);
    let settle_started = stats::Started::now();
    let settled: Vec<ledger::Settlement> = (0..merchant_count as u32)
        .into_par_iter()
        .map(|index| {
            // Widened one merchant at a time: the whole run's dates stay in
            // their compact form.
            let days: Vec<(Day, DayTotals)> = days
                .of(index)
                .iter()
                .map(|(day, sums)| (*day, sums.widened()))
                .collect();
            let input = MerchantInput {
                index,
                merchant: plan.merchants.get(index),
                opening: plan
                    .prior
                    .and_then(|prior| prior.merchant(&plan.merchants.get(index).id))
                    .unwrap_or_default(),
                days: &days,
                adjustments: adjustment_days.of(index),
                purchased_in_run: purchased[index as usize],
            };
            ledger::settle_merchant(&input, settings, span)
        })
        .collect::<std::result::Result<_, ledger::Overflow>>()
        .map_err(|overflow| {
            too_large(
                plan,
                overflow.merchant,
                "an amount of the settlement of",
                overflow.settlement_day,
            )
        })?;

    let mut totals = input_totals(&parsed, &linked, &adjustments);
    // Rows stay grouped by merchant: no copy of the whole run's rows.
    let mut rows = Vec::with_capacity(merchant_count);
    let mut notes = Vec::with_capacity(merchant_count);
    let mut closing = Vec::with_capacity(merchant_count);
    for (merchant_rows, merchant_notes, merchant_closing) in settled {
        rows.push(merchant_rows);
        notes.push(merchant_notes);
        closing.push(merchant_closing);
    }
    for merchant_rows in &rows {
        if let (Some(first), Some(last)) = (merchant_rows.first(), merchant_rows.last()) {
            totals.carried_in_first_fen += i128::from(first.carried_in_fen);
            totals.carried_out_last_fen += i128::from(last.carried_out_fen);
        }
    }
    check_conservation(&rows, &mut totals)?;
    times.record("ledger", settle_started);

    // Both are consumed here: rejects.csv is their only reader.
    let mut rejects = std::mem::take(&mut parsed.rejects);
    let mut details = std::mem::take(&mut linked.details);
    details.sort_unstable_by_key(|(index, _)| *index);
    let later_rejects: Vec<Reject> = parsed
        .txns
        .par_iter()
        .zip(linked.rejected.par_iter())
        .enumerate()
        .filter_map(|(index, (txn, rejected))| {
            let code = (*rejected)?;
            let detail = match details.binary_search_by_key(&(index as u32), |(i, _)| *i) {
                Ok(at) => details[at].1.clone(),
                Err(_) => link::describe_row_check(&parsed, txn, code, &context),
            };
            let id = String::from_utf8_lossy(parsed.txn_id(txn)).into_owned();
            Some(Reject {
                file_index: u32::from(txn.file_index),
                line: u64::from(txn.line),
                id,
                code,
                detail,
            })
        })
        .collect();
    rejects.extend(later_rejects);
    rejects.sort_by_key(|r| (r.file_index, r.line));
    let mut txn_counts: Vec<FileCounts> = parsed
        .rows_read_per_file
        .iter()
        .map(|&rows_read| FileCounts {
            rows_read,
            ..FileCounts::default()
        })
        .collect();
    for reject in &rejects {
        txn_counts[reject.file_index as usize].rows_rejected += 1;
    }
    for counts in &mut txn_counts {
        counts.rows_accepted = counts.rows_read - counts.rows_rejected;
    }
    rejects.extend(adjustment_rejects);

    Ok(Settled {
        parsed,
        linked,
        rows,
        notes,
        groups,
        rejects,
        span,
        start,
        horizon,
        txn_counts,
        adjustment_counts,
        adjustments,
        totals,
        closing,
        carried_over: plan
            .prior
            .map(|prior| {
                prior
                    .merchants
                    .iter()
                    .filter(|(id, _)| plan.merchants.index_of(id.as_bytes()).is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
        times,
        latencies,
    })
}

/// The failure of a merchant's sums that leave 64-bit fen: `what` of
/// `day` names where.
fn too_large(plan: &Plan, merchant: u32, what: &str, day: Day) -> Error {
    Error::Conservation(format!(
        "merchant {}: {what} {} does not fit 64-bit fen",
        plan.merchants.get(merchant).id,
        crate::calendar::format_date(day)
    ))
}

/// The left side of RULES.md 3.7, from the accepted inputs themselves.
fn input_totals(parsed: &Parsed, linked: &Linked, adjustments: &[Adjustment]) -> Totals {
    // Summed straight from the rows, not from the per-date aggregation, so
    // that the check catches a row lost or counted twice on the way.
    let sum = (0..parsed.txns.len())
        .into_par_iter()
        .filter(|&i| linked.accepted(i))
        .map(|i| row_totals(parsed, linked, i))
        .reduce(DayTotals::default, |mut a, b| {
            a.merge(&b);
            a
        });
    let mut totals = Totals {
        purchases_fen: sum.purchases_fen,
        refunds_fen: sum.refunds_fen,
        fees_fen: sum.fees_fen,
        ..Totals::default()
    };
    totals.adjustments_fen = adjustments.iter().map(|a| i128::from(a.amount_fen)).sum();
    totals
}

/// Checks RULES.md 3.7 and that the rows carry exactly the accepted inputs.
fn check_conservation(rows: &[Vec<Row>], totals: &mut Totals) -> Result<()> {
    // One pass over the rows, in parallel, summing every column at once.
    let sums = rows
        .par_iter()
        .flatten()
        .fold(
            || [0i128; 9],
            |mut acc, r| {
                let columns = [
                    i128::from(r.purchases_fen),
                    i128::from(r.refunds_fen),
                    i128::from(r.fees_fen),
                    i128::from(r.adjustments_fen),
                    i128::from(r.payout_fen),
                    i128::from(r.deposit_held_fen),
                    i128::from(r.deposit_released_fen),
                    i128::from(r.deposit_forfeited_fen),
                    i128::from(r.deactivation_fee_fen),
                ];
                for (sum, value) in acc.iter_mut().zip(columns) {
                    *sum += value;
                }
                acc
            },
        )
        .reduce(
            || [0i128; 9],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        );
    let from_rows = [
        ("purchases", sums[0], totals.purchases_fen),
        ("refunds", sums[1], totals.refunds_fen),
        ("fees", sums[2], totals.fees_fen),
        ("adjustments", sums[3], totals.adjustments_fen),
    ];
    for (name, in_rows, in_inputs) in from_rows {
        if in_rows != in_inputs {
            return Err(Error::Conservation(format!(
                "{name}: settlement rows carry {} but the accepted inputs total {}",
                money::format_fen(in_rows),
                money::format_fen(in_inputs)
            )));
        }
    }
    totals.payouts_fen = sums[4];
    totals.deposit_held_fen = sums[5];
    totals.deposit_released_fen = sums[6];
    totals.deposit_forfeited_fen = sums[7];
    totals.deactivation_fees_fen = sums[8];
    let left = totals.purchases_fen - totals.refunds_fen - totals.fees_fen
        + totals.adjustments_fen
        + totals.carried_in_first_fen;
    let right = totals.payouts_fen + totals.deposit_held_fen - totals.deposit_released_fen
        + totals.deactivation_fees_fen
        + totals.carried_out_last_fen;
    if left != right {
        return Err(Error::Conservation(format!(
            "inputs give {} but payouts, deposits, fees and balances give {}",
            money::format_fen(left),
            money::format_fen(right)
        )));
    }
    Ok(())
}
