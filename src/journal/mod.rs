//! The posting journal (docs/JOURNAL.md): one posting per money movement of
//! every settlement row, each naming the rule that moved it and why, and
//! the proof that a row's postings sum exactly to its columns.
//!
//! This module explains what the pipeline and the ledger decided; it must
//! not decide a rule again. `render` writes the journal files and checks
//! them against the settlement rows as it goes; `settle verify` uses the
//! same `Check` over the published files.
#![forbid(unsafe_code)]

pub mod groups;
mod render;

pub use groups::{GroupOverflow, Groups};
pub use render::{JOURNAL_HEADER, Journal};

use crate::ledger::Row;
use crate::money::format_fen;

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

    /// The settlement column a posting sums into, and the sign that turns
    /// its amount into that column's figure.
    fn column(self) -> (Column, i128) {
        match self {
            PostingKind::CarriedIn => (Column::CarriedIn, 1),
            PostingKind::Purchase => (Column::Purchases, 1),
            PostingKind::Fee | PostingKind::FeeReturned => (Column::Fees, -1),
            PostingKind::Void => (Column::TxnCountOnly, 0),
            PostingKind::Refund => (Column::Refunds, -1),
            PostingKind::Adjustment => (Column::Adjustments, 1),
            PostingKind::DepositHold => (Column::DepositHeld, -1),
            PostingKind::DepositRelease | PostingKind::DepositReleaseFinal => {
                (Column::DepositReleased, 1)
            }
            PostingKind::DepositForfeit => (Column::DepositForfeited, 1),
            PostingKind::DeactivationFee | PostingKind::DeactivationFeeWaived => {
                (Column::DeactivationFee, -1)
            }
            PostingKind::Payout => (Column::Payout, -1),
            PostingKind::CarriedOut => (Column::CarriedOut, -1),
        }
    }

    /// Whether the posting's `count` adds to the row's `txn_count`.
    fn counts_rows(self) -> bool {
        matches!(
            self,
            PostingKind::Purchase | PostingKind::Void | PostingKind::Refund
        )
    }
}

/// The settlement columns a journal explains, in the settlement file's
/// order (`proceeds` is derived from the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Purchases,
    Refunds,
    Fees,
    Adjustments,
    CarriedIn,
    DepositHeld,
    DepositReleased,
    DepositForfeited,
    DeactivationFee,
    Payout,
    CarriedOut,
    /// Voids move no money; they only count rows.
    TxnCountOnly,
}

const COLUMN_NAMES: [&str; 11] = [
    "purchases",
    "refunds",
    "fees",
    "adjustments",
    "carried_in",
    "deposit_held",
    "deposit_released",
    "deposit_forfeited",
    "deactivation_fee",
    "payout",
    "carried_out",
];

/// The sums of one settlement row's postings, to compare with the row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Check {
    txn_count: u64,
    columns: [i128; 11],
    /// Σ amount over every posting but memos: 0 when the row balances.
    balance_fen: i128,
    postings: u32,
}

impl Check {
    /// Adds one posting.
    pub fn add(&mut self, kind: PostingKind, amount_fen: i128, count: u64) {
        let (column, sign) = kind.column();
        if column != Column::TxnCountOnly {
            self.columns[column as usize] += sign * amount_fen;
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
        let row_columns = [
            row.purchases_fen,
            row.refunds_fen,
            row.fees_fen,
            row.adjustments_fen,
            row.carried_in_fen,
            row.deposit_held_fen,
            row.deposit_released_fen,
            row.deposit_forfeited_fen,
            row.deactivation_fee_fen,
            row.payout_fen,
            row.carried_out_fen,
        ];
        if self.postings == 0 {
            return Err("the row has no postings".into());
        }
        if self.txn_count != row.txn_count {
            return Err(format!(
                "txn_count: the postings count {} transactions, the row {}",
                self.txn_count, row.txn_count
            ));
        }
        for ((name, posted), in_row) in COLUMN_NAMES.iter().zip(self.columns).zip(row_columns) {
            if posted != i128::from(in_row) {
                return Err(format!(
                    "{name}: the postings sum to {}, the row says {}",
                    format_fen(posted),
                    format_fen(in_row.into())
                ));
            }
        }
        let c = &self.columns;
        let proceeds = c[0] - c[1] - c[2] + c[3] + c[4];
        if proceeds != i128::from(row.proceeds_fen) {
            return Err(format!(
                "proceeds: the postings give {}, the row says {}",
                format_fen(proceeds),
                format_fen(row.proceeds_fen.into())
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

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
