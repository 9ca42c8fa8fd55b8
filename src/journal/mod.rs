//! The posting journal (docs/JOURNAL.md): one posting per money movement of
//! every settlement row, each naming the rule that moved it and why, and
//! the proof that a row's postings sum exactly to its columns.
//!
//! This module explains what the pipeline and the ledger decided; it must
//! not decide a rule again. `render` writes the journal files (with
//! `events` for the deposit and deactivation postings) and checks them
//! against the settlement rows as it goes; `settle verify` and `settle
//! statement` read them back with `read_line` and the same `Check`.
#![forbid(unsafe_code)]

mod events;
mod render;

pub use render::{JOURNAL_HEADER, Journal};

use crate::ingest::csv::Record;
use crate::ledger::{AMOUNT_COLUMNS, Row};
use crate::money::{self, format_fen};

/// The kind of a posting: one stable code per rule, in posting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PostingKind {
    CarriedIn,
    Purchase,
    Fee,
    Void,
    Refund,
    FeeReturned,
    Adjustment,
    DepositHold,
    DepositRelease,
    DepositReleaseFinal,
    DepositForfeit,
    DeactivationFee,
    DeactivationFeeWaived,
    Payout,
    CarriedOut,
}

impl PostingKind {
    pub const ALL: [PostingKind; 15] = [
        PostingKind::CarriedIn,
        PostingKind::Purchase,
        PostingKind::Fee,
        PostingKind::Void,
        PostingKind::Refund,
        PostingKind::FeeReturned,
        PostingKind::Adjustment,
        PostingKind::DepositHold,
        PostingKind::DepositRelease,
        PostingKind::DepositReleaseFinal,
        PostingKind::DepositForfeit,
        PostingKind::DeactivationFee,
        PostingKind::DeactivationFeeWaived,
        PostingKind::Payout,
        PostingKind::CarriedOut,
    ];

    /// The code written in the journal's `kind` column.
    pub fn code(self) -> &'static str {
        match self {
            PostingKind::CarriedIn => "carried_in",
            PostingKind::Purchase => "purchase",
            PostingKind::Fee => "fee",
            PostingKind::Void => "void",
            PostingKind::Refund => "refund",
            PostingKind::FeeReturned => "fee_returned",
            PostingKind::Adjustment => "adjustment",
            PostingKind::DepositHold => "deposit_hold",
            PostingKind::DepositRelease => "deposit_release",
            PostingKind::DepositReleaseFinal => "deposit_release_final",
            PostingKind::DepositForfeit => "deposit_forfeit",
            PostingKind::DeactivationFee => "deactivation_fee",
            PostingKind::DeactivationFeeWaived => "deactivation_fee_waived",
            PostingKind::Payout => "payout",
            PostingKind::CarriedOut => "carried_out",
        }
    }

    pub fn from_code(code: &str) -> Option<PostingKind> {
        PostingKind::ALL
            .into_iter()
            .find(|kind| kind.code() == code)
    }

    /// A memo posting carries its column's figure but moves no money, so
    /// it stays out of the row's balance: a forfeited deposit left the
    /// merchant's account when it was held.
    pub fn is_memo(self) -> bool {
        self == PostingKind::DepositForfeit
    }

    /// The settlement column a posting sums into (its place in
    /// `AMOUNT_COLUMNS`), and the sign that turns its amount into that
    /// column's figure; `None` for a void, which only counts rows.
    fn column(self) -> Option<(usize, i128)> {
        let (name, sign) = match self {
            PostingKind::CarriedIn => ("carried_in", 1),
            PostingKind::Purchase => ("purchases", 1),
            PostingKind::Fee | PostingKind::FeeReturned => ("fees", -1),
            PostingKind::Void => return None,
            PostingKind::Refund => ("refunds", -1),
            PostingKind::Adjustment => ("adjustments", 1),
            PostingKind::DepositHold => ("deposit_held", -1),
            PostingKind::DepositRelease | PostingKind::DepositReleaseFinal => {
                ("deposit_released", 1)
            }
            PostingKind::DepositForfeit => ("deposit_forfeited", 1),
            PostingKind::DeactivationFee | PostingKind::DeactivationFeeWaived => {
                ("deactivation_fee", -1)
            }
            PostingKind::Payout => ("payout", -1),
            PostingKind::CarriedOut => ("carried_out", -1),
        };
        let at = AMOUNT_COLUMNS.iter().position(|column| *column == name);
        Some((at.expect("a settlement column"), sign))
    }

    /// Whether the posting's `count` adds to the row's `txn_count`.
    fn counts_rows(self) -> bool {
        matches!(
            self,
            PostingKind::Purchase | PostingKind::Void | PostingKind::Refund
        )
    }
}

/// Fields of a journal line (`JOURNAL_HEADER`).
pub const JOURNAL_FIELDS: usize = 12;

/// The columns of a journal line that its checks read, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    pub seq: u64,
    pub kind: PostingKind,
    pub amount_fen: i64,
    /// `None` where the column is empty.
    pub count: Option<u64>,
}

/// Reads a published journal line (by `settle verify` and `settle
/// statement`, which add their own checks); `Err` says what is wrong with
/// it. The text columns are the caller's to read from `record`.
pub fn read_line(record: &Record) -> Result<Line, String> {
    if record.field_count() != JOURNAL_FIELDS {
        return Err(format!(
            "{} fields, not {JOURNAL_FIELDS}",
            record.field_count()
        ));
    }
    let text = |k: usize| String::from_utf8_lossy(record.field(k));
    let number = |k: usize, column: &str| {
        text(k)
            .parse::<u64>()
            .map_err(|_| format!("{column} {:?} is not a count", text(k)))
    };
    let kind =
        PostingKind::from_code(&text(3)).ok_or_else(|| format!("unknown kind {:?}", text(3)))?;
    let amount_fen = money::parse_amount_fen(record.field(4), true)
        .map_err(|e| format!("amount {}", e.describe()))?;
    let count = if record.field(9).is_empty() {
        None
    } else {
        Some(number(9, "count")?)
    };
    Ok(Line {
        seq: number(2, "seq")?,
        kind,
        amount_fen,
        count,
    })
}

/// The sums of one settlement row's postings, to compare with the row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Check {
    txn_count: u64,
    /// In the order of `AMOUNT_COLUMNS`; `proceeds` is derived from the
    /// others when the row is compared.
    columns: [i128; 12],
    /// Σ amount over every posting but memos: 0 when the row balances.
    balance_fen: i128,
    postings: u32,
}

impl Check {
    /// Adds one posting.
    pub fn add(&mut self, kind: PostingKind, amount_fen: i128, count: u64) {
        if let Some((column, sign)) = kind.column() {
            self.columns[column] += sign * amount_fen;
        }
        if kind.counts_rows() {
            self.txn_count += count;
        }
        if !kind.is_memo() {
            self.balance_fen += amount_fen;
        }
        self.postings += 1;
    }

    /// Compares the postings with their settlement row; `Err` names the
    /// first column that differs.
    pub fn against(&self, row: &Row) -> Result<(), String> {
        if self.postings == 0 {
            return Err("the row has no postings".into());
        }
        if self.txn_count != row.txn_count {
            return Err(format!(
                "txn_count: the postings count {} transactions, the row {}",
                self.txn_count, row.txn_count
            ));
        }
        let mut posted = self.columns;
        let [purchases, refunds, fees, adjustments, carried_in, ..] = posted;
        posted[PROCEEDS] = purchases - refunds - fees + adjustments + carried_in;
        for ((name, posted), in_row) in AMOUNT_COLUMNS.iter().zip(posted).zip(row.amounts()) {
            if posted != i128::from(in_row) {
                let verb = if *name == "proceeds" {
                    "give"
                } else {
                    "sum to"
                };
                return Err(format!(
                    "{name}: the postings {verb} {}, the row says {}",
                    format_fen(posted),
                    format_fen(in_row.into())
                ));
            }
        }
        if self.balance_fen != 0 {
            return Err(format!(
                "the postings do not balance: {} is left unexplained",
                format_fen(self.balance_fen)
            ));
        }
        Ok(())
    }
}

/// Where `proceeds` lies in `AMOUNT_COLUMNS`.
const PROCEEDS: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proceeds_is_where_the_check_derives_it() {
        assert_eq!(AMOUNT_COLUMNS[PROCEEDS], "proceeds");
    }

    #[test]
    fn codes_are_distinct_and_read_back() {
        for kind in PostingKind::ALL {
            assert_eq!(PostingKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(PostingKind::from_code("bonus"), None);
    }

    /// A row worked by hand: 100.00 of purchases, fee 0.38, a 20.00
    /// refund returning 0.08, carried in −10.00, 30.00 held, payout 39.70.
    #[test]
    fn a_row_and_its_postings_agree_to_the_fen() {
        let row = Row {
            txn_count: 3,
            purchases_fen: 10_000,
            refunds_fen: 2_000,
            fees_fen: 30,
            carried_in_fen: -1_000,
            proceeds_fen: 6_970,
            deposit_held_fen: 3_000,
            payout_fen: 3_970,
            ..Row::default()
        };
        let postings = [
            (PostingKind::CarriedIn, -1_000, 0),
            (PostingKind::Purchase, 10_000, 2),
            (PostingKind::Fee, -38, 2),
            (PostingKind::Refund, -2_000, 1),
            (PostingKind::FeeReturned, 8, 1),
            (PostingKind::DepositHold, -3_000, 0),
            (PostingKind::Payout, -3_970, 0),
        ];
        let mut check = Check::default();
        for (kind, amount, count) in postings {
            check.add(kind, amount, count);
        }
        assert_eq!(check.against(&row), Ok(()));

        // One fen more fee: the fees column and the balance are both off.
        let mut off = Check::default();
        for (kind, amount, count) in postings {
            off.add(
                kind,
                if kind == PostingKind::Fee {
                    -39
                } else {
                    amount
                },
                count,
            );
        }
        assert_eq!(
            off.against(&row),
            Err("fees: the postings sum to 0.31, the row says 0.30".into())
        );

        // A memo forfeit does not enter the balance.
        let mut memo = check;
        memo.add(PostingKind::DepositForfeit, 0, 0);
        assert_eq!(memo.against(&row), Ok(()));
        let mut forfeit_row = row;
        forfeit_row.deposit_forfeited_fen = 29_900;
        let mut forfeit = check;
        forfeit.add(PostingKind::DepositForfeit, 29_900, 0);
        assert_eq!(forfeit.against(&forfeit_row), Ok(()));
        assert_eq!(
            Check::default().against(&row),
            Err("the row has no postings".into())
        );
    }
}
