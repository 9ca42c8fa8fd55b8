//! CSV outputs: settlement files, rejects and fee detail (RULES.md 4).
//! LF line ends and minimal RFC 4180 quoting.

use std::collections::BTreeMap;

use crate::calendar::{self, Day};
use crate::config::Settings;
pub use crate::csv_field::push_field;
use crate::ingest::adjustments::Adjustment;
use crate::ingest::txn::{Card, Kind};
use crate::ingest::{Merchants, Reject};
use crate::ledger::Row;
use crate::money::{self, push_fen};
use crate::pipeline::Settled;

pub const SETTLEMENT_HEADER: &str = "settlement_date,merchant_id,txn_count,purchases,refunds,fees,adjustments,carried_in,proceeds,deposit_held,deposit_released,deposit_forfeited,deactivation_fee,payout,carried_out\n";
pub const REJECTS_HEADER: &str = "file,line,txn_id,reason,detail\n";
pub const ADJUSTMENTS_HEADER: &str = "adj_id,merchant_id,settlement_date,amount,reason\n";
pub const DETAIL_HEADER: &str = "txn_id,merchant_id,terminal_id,type,business_date,settlement_date,amount,category,rate,fee,status\n";

/// The settlement rows by settlement date. Rows come in merchant-index
/// order, which is merchant_id byte order, and keep it within each date.
pub fn settlement_days(rows: &[Vec<Row>]) -> Vec<(Day, Vec<&Row>)> {
    let mut by_day: BTreeMap<Day, Vec<&Row>> = BTreeMap::new();
    for row in rows.iter().flatten() {
        by_day.entry(row.settlement_day).or_default().push(row);
    }
    by_day.into_iter().collect()
}

/// Rows of a settlement file whose memory is touched together before they
/// are written out (see `settlement_file`).
const RENDER_BATCH_ROWS: usize = 16;

/// One settlement file's contents: the rows of `day`.
pub fn settlement_file(day: Day, day_rows: &[&Row], merchants: &Merchants) -> String {
    let date = calendar::format_date(day);
    let mut out = String::with_capacity(SETTLEMENT_HEADER.len() + day_rows.len() * 120);
    out.push_str(SETTLEMENT_HEADER);
    let mut count = itoa::Buffer::new();
    // A date's rows lie one per merchant, far apart in memory, and each
    // read waited on its own cache miss (three quarters of this function's
    // time). Reading fields less than a cache line apart across every row
    // of a batch first (a 112-byte row can span three lines) lets the
    // batch's misses overlap; the rows are then written from cache.
    for batch in day_rows.chunks(RENDER_BATCH_ROWS) {
        let touched = batch.iter().fold(0u64, |acc, row| {
            acc ^ row.txn_count
                ^ row.deposit_held_fen as u64
                ^ u64::from(row.merchant)
                ^ u64::from(row.settlement_day as u32)
        });
        std::hint::black_box(touched);
        for row in batch {
            render_settlement_row(&mut out, &date, row, merchants, &mut count);
        }
    }
    out
}

fn render_settlement_row(
    out: &mut String,
    date: &str,
    row: &Row,
    merchants: &Merchants,
    count: &mut itoa::Buffer,
) {
    out.push_str(date);
    out.push(',');
    push_field(out, merchants.id_of(row.merchant));
    out.push(',');
    out.push_str(count.format(row.txn_count));
    for amount in row.amounts() {
        out.push(',');
        push_fen(out, amount.into());
    }
    out.push('\n');
}

/// `rejects.csv`; `file_names[i]` is the path of input file `i` as given.
pub fn rejects_file(rejects: &[Reject], file_names: &[&str]) -> String {
    let mut out = String::from(REJECTS_HEADER);
    for reject in rejects {
        push_field(&mut out, file_names[reject.file_index as usize]);
        out.push(',');
        out.push_str(&reject.line.to_string());
        out.push(',');
        push_field(&mut out, &reject.id);
        out.push(',');
        out.push_str(reject.code.as_str());
        out.push(',');
        push_field(&mut out, &reject.detail);
        out.push('\n');
    }
    out
}

/// `adjustments-booked.csv`: every accepted adjustment in line order, with
/// the reason operations gave for it, so a merchant's statement can say why.
pub fn adjustments_file(adjustments: &[Adjustment], merchants: &Merchants) -> String {
    let mut out = String::from(ADJUSTMENTS_HEADER);
    for adjustment in adjustments {
        push_field(&mut out, &adjustment.id);
        out.push(',');
        push_field(&mut out, &merchants.get(adjustment.merchant).id);
        out.push(',');
        out.push_str(&calendar::format_date(adjustment.settlement_day));
        out.push(',');
        push_fen(&mut out, adjustment.amount_fen.into());
        out.push(',');
        push_field(&mut out, &adjustment.reason);
        out.push('\n');
    }
    out
}

/// `fees-YYYY-MM-DD.csv` contents by settlement date: one row per accepted
/// transaction, by merchant_id then file order.
pub fn detail_files(
    settled: &Settled,
    merchants: &Merchants,
    settings: &Settings,
) -> BTreeMap<Day, String> {
    let parsed = &settled.parsed;
    let linked = &settled.linked;
    let lag = settings.settlement_lag_days;
    let mut order: Vec<usize> = (0..parsed.txns.len())
        .filter(|&i| linked.accepted(i))
        .collect();
    order.sort_by_key(|&i| (parsed.txns[i].business_day, parsed.txns[i].merchant, i));
    let mut files: BTreeMap<Day, String> = BTreeMap::new();
    for i in order {
        let txn = &parsed.txns[i];
        let settlement_day = txn.business_day + lag;
        let out = files
            .entry(settlement_day)
            .or_insert_with(|| DETAIL_HEADER.to_string());
        let category = settings.categories.get(linked.category[i]);
        // A refund or void shows its purchase's rate, an earlier run's
        // purchase included.
        let rate_ppm = match linked.purchase_card(parsed, i) {
            Card::Credit => category.credit_rate_ppm,
            _ => category.debit_rate_ppm,
        };
        let (fee_fen, status) = match txn.kind {
            Kind::Purchase if linked.voided[i] => (0, "voided"),
            Kind::Purchase if linked.capped[i] => (linked.fee_fen[i], "capped"),
            Kind::Purchase => (linked.fee_fen[i], "charged"),
            Kind::Refund => (-linked.fee_fen[i], "refund"),
            Kind::Void => (0, "void"),
        };
        for text in [
            &*String::from_utf8_lossy(parsed.txn_id(txn)),
            merchants.id_of(txn.merchant),
            &String::from_utf8_lossy(parsed.terminal_id(txn)),
            txn.kind.as_str(),
            &calendar::format_date(txn.business_day),
            &calendar::format_date(settlement_day),
            &money::format_fen(txn.amount_fen.into()),
            &category.name,
            &money::format_rate(rate_ppm),
        ] {
            push_field(out, text);
            out.push(',');
        }
        push_fen(out, fee_fen.into());
        out.push(',');
        out.push_str(status);
        out.push('\n');
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settlement_header_names_the_rows_amounts_in_their_order() {
        let amounts = crate::ledger::AMOUNT_COLUMNS.join(",");
        assert_eq!(
            SETTLEMENT_HEADER,
            format!("settlement_date,merchant_id,txn_count,{amounts}\n")
        );
    }
}
