//! The statement's two outputs: a self-contained HTML page (minijinja, with
//! HTML auto-escaping, from `templates/statement.html`) and a CSV file of
//! postings and totals (docs/STATEMENT.md).
//!
//! It owns words (through `labels`), number formatting for people
//! (thousands separators, rates as percentages) and layout. It must not
//! compute money: every amount it prints is a figure of the `Statement`.
//! Grouping digits is done on the integer's decimal text; there is no
//! floating point here.

use minijinja::{AutoEscape, Environment};
use serde_json::{Value, json};

use super::labels::{html_lang, label, labels};
use super::{DeactivationStory, DepositOutcome, DepositStory, Kind, Lang, Posting, Statement};
use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::ledger::AMOUNT_COLUMNS;
use crate::money::{self, format_fen};
use crate::output::csv::push_field;
use crate::statement::read::SettlementRow;

const TEMPLATE_NAME: &str = "statement.html";
const TEMPLATE: &str = include_str!("templates/statement.html");

/// The CSV output's header (docs/STATEMENT.md).
pub const CSV_HEADER: &str = "record,settlement_date,merchant_id,seq,kind,amount,category,card,rate,capped,count,source,detail\n";

/// Formats fen as CNY with thousands separators: `-1,234,567.89`.
pub fn grouped(amount_fen: i128) -> String {
    money::format_fen_grouped(amount_fen)
}

/// A rate's shortest decimal text (`0.0049`) as a percentage (`0.49%`),
/// through its integer ppm; the text itself when it is not a rate.
fn percent(rate: &str) -> String {
    money::parse_rate_ppm(rate).map_or_else(|| rate.to_string(), money::format_percent)
}

fn date(day: Day) -> String {
    calendar::format_date(day)
}

/// The section of a day that a posting belongs to.
fn section(kind: Kind) -> &'static str {
    match kind {
        Kind::Purchase | Kind::Void | Kind::Refund => "came_in",
        Kind::CarriedIn
        | Kind::Fee
        | Kind::FeeReturned
        | Kind::DepositHold
        | Kind::DeactivationFee
        | Kind::DeactivationFeeWaived => "deductions",
        Kind::Adjustment => "adjustments_section",
        Kind::DepositRelease | Kind::DepositReleaseFinal | Kind::DepositForfeit => {
            "deposit_section"
        }
        Kind::Payout | Kind::CarriedOut => "payout_section",
    }
}

const SECTIONS: [&str; 5] = [
    "came_in",
    "deductions",
    "adjustments_section",
    "deposit_section",
    "payout_section",
];

/// Category, card, count, rate and cap of a posting, as words.
fn particulars(posting: &Posting, lang: Lang) -> Vec<String> {
    let mut parts = Vec::new();
    if !posting.category.is_empty() {
        parts.push(posting.category.clone());
    }
    if !posting.card.is_empty() {
        parts.push(label(lang, &posting.card));
    }
    if let Some(count) = posting.count {
        parts.push(match lang {
            Lang::Zh => format!("{count} {}", label(lang, "count_unit")),
            Lang::En => format!("{count} {}", label(lang, "count_unit")),
        });
    }
    if !posting.rate.is_empty() {
        parts.push(format!(
            "{} {}",
            label(lang, "rate"),
            percent(&posting.rate)
        ));
    }
    if posting.capped == "yes" {
        parts.push(label(lang, "capped"));
    }
    if parts.is_empty() {
        parts.extend(source_words(posting, lang));
    }
    parts
}

/// The `source` pairs of a posting as `label value` words: amounts with
/// thousands separators, a window `FIRST..LAST` as `FIRST – LAST`, a flag
/// as yes/no. Keys without a label are shown as written.
fn source_words(posting: &Posting, lang: Lang) -> Vec<String> {
    posting
        .source
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key != "adj_id" || posting.kind == Kind::Adjustment)
        .map(|(key, value)| {
            let name = label(lang, &format!("source_{key}"));
            let value = match key {
                "deposit" | "held" | "target" | "volume" => {
                    money::parse_amount_fen(value.as_bytes(), true)
                        .map_or_else(|_| value.to_string(), |fen| grouped(i128::from(fen)))
                }
                "window" => value.replace("..", " – "),
                "purchases_seen" => label(lang, value),
                _ => value.to_string(),
            };
            format!("{name} {value}")
        })
        .collect()
}

fn amount_class(posting: &Posting) -> &'static str {
    if posting.kind.is_memo() {
        "memo"
    } else if posting.amount_fen < 0 {
        "neg"
    } else {
        "pos"
    }
}

fn posting_view(statement: &Statement, posting: &Posting, lang: Lang) -> Value {
    let correction = statement
        .corrections
        .iter()
        .find(|c| c.adjustment == (posting.date, posting.seq))
        .map(|c| {
            json!({
                "kind": label(lang, &format!("kind_{}", c.charge.kind.code())),
                "date": date(c.charge.date),
                "amount": grouped(i128::from(c.charge.amount_fen)),
                "correction": grouped(i128::from(posting.amount_fen)),
                "reason": posting.detail,
            })
        });
    // The payout section shows the settlement columns (money paid, a
    // shortfall carried as a negative), not the postings' balancing signs.
    let (shown_fen, class) = match posting.kind {
        Kind::Payout | Kind::CarriedOut => (-posting.amount_fen, "out"),
        _ => (posting.amount_fen, amount_class(posting)),
    };
    json!({
        "item": label(lang, &format!("kind_{}", posting.kind.code())),
        "code": posting.kind.code(),
        "particulars": particulars(posting, lang),
        "detail": posting.detail,
        "amount": grouped(i128::from(shown_fen)),
        "class": class,
        "correction": correction,
    })
}

/// The settlement columns shown as totals, with their figures; zero ones
/// left out except those in `always`.
fn figures(row: &SettlementRow, lang: Lang, always: &[&str]) -> Vec<Value> {
    let count = ("txn_count", row.txn_count.to_string(), row.txn_count == 0);
    let amounts = AMOUNT_COLUMNS
        .into_iter()
        .zip(row.amounts())
        .filter(|(key, _)| *key != "proceeds")
        .map(|(key, value)| (key, grouped(value), value == 0));
    std::iter::once(count)
        .chain(amounts)
        .filter(|(key, _, zero)| !zero || always.contains(key))
        .map(|(key, text, _)| json!({"key": key, "label": label(lang, key), "value": text}))
        .collect()
}

fn deposit_view(story: &DepositStory, statement: &Statement, lang: Lang) -> Value {
    let fen = |v: Option<i64>| v.map(|f| grouped(i128::from(f)));
    let (status, badge, decided) = match &story.outcome {
        DepositOutcome::Collecting => (label(lang, "collecting"), "wait", None),
        DepositOutcome::Released {
            date: day,
            amount_fen,
            reached_on,
            deactivated_on,
        } => {
            let why = match (reached_on, deactivated_on) {
                (Some(b), _) => format!("{} {}", label(lang, "reached_on"), date(*b)),
                (None, Some(d)) => format!("{} {}", label(lang, "deactivated_on"), date(*d)),
                (None, None) => String::new(),
            };
            (
                label(lang, "released"),
                "ok",
                Some(
                    json!({"date": date(*day), "amount": grouped(i128::from(*amount_fen)), "why": why}),
                ),
            )
        }
        DepositOutcome::Forfeited {
            date: day,
            amount_fen,
        } => (
            label(lang, "forfeited"),
            "bad",
            Some(json!({
                "date": date(*day),
                "amount": grouped(i128::from(*amount_fen)),
                "why": label(lang, "window_ended"),
            })),
        ),
    };
    json!({
        "as_of": date(statement.to),
        "deposit": fen(story.deposit_fen),
        "held": grouped(i128::from(story.held_fen)),
        "target": fen(story.target_fen),
        "window": story.window.map(|(a, b)| format!("{} – {}", date(a), date(b))),
        "volume": fen(story.volume_fen),
        "days_left": story.days_left,
        "status": status,
        "badge": badge,
        "decided": decided,
    })
}

fn deactivation_view(story: &DeactivationStory, statement: &Statement, lang: Lang) -> Value {
    let seen = story.purchases_seen.as_deref().map(|v| label(lang, v));
    // A credit adjustment that gives the fee back (see `corrections`).
    let given_back = statement
        .corrections
        .iter()
        .find(|c| c.charge.kind == Kind::DeactivationFee && c.charge.date == story.date)
        .and_then(|c| {
            let (day, seq) = c.adjustment;
            statement
                .days
                .iter()
                .flat_map(|d| d.postings.iter())
                .find(|p| p.date == day && p.seq == seq)
        })
        .map(|p| {
            json!({
                "date": date(p.date),
                "amount": grouped(i128::from(p.amount_fen)),
                "reason": p.detail,
            })
        });
    json!({
        "date": date(story.date),
        "waived": story.waived,
        "headline": label(lang, if story.waived { "fee_waived" } else { "fee_taken" }),
        "fee": grouped(i128::from(story.fee_fen)),
        "activated_on": story.activated_on,
        "deactivated_on": story.deactivated_on,
        "days": story.days,
        "return_window_days": story.return_window_days,
        "purchases_seen": seen,
        "why": label(lang, if story.waived { "waiver_why" } else { "fee_why" }),
        "given_back": given_back,
    })
}

/// The page's data: words, figures already formatted, nothing computed.
fn view(statement: &Statement, lang: Lang) -> Value {
    let days: Vec<Value> = statement
        .days
        .iter()
        .map(|day| {
            let sections: Vec<Value> = SECTIONS
                .iter()
                .filter_map(|key| {
                    let rows: Vec<Value> = day
                        .postings
                        .iter()
                        .filter(|p| section(p.kind) == *key)
                        .map(|p| posting_view(statement, p, lang))
                        .collect();
                    (!rows.is_empty()).then(|| json!({"title": label(lang, key), "rows": rows}))
                })
                .collect();
            json!({
                "date": date(day.date),
                "payout": grouped(day.row.payout_fen),
                "carried_out": (day.row.carried_out_fen != 0).then(|| grouped(day.row.carried_out_fen)),
                "sections": sections,
                "totals": figures(&day.row, lang, &["payout"]),
            })
        })
        .collect();
    json!({
        "lang": html_lang(lang),
        "t": labels(lang),
        "merchant": statement.merchant,
        "from": date(statement.from),
        "to": date(statement.to),
        "runs": statement.runs,
        "summary": figures(&statement.totals, lang, &["purchases", "fees", "payout"]),
        "payout": grouped(statement.totals.payout_fen),
        "deposit": statement.deposit.as_ref().map(|s| deposit_view(s, statement, lang)),
        "deactivation": statement.deactivation.as_ref().map(|s| deactivation_view(s, statement, lang)),
        "days": days,
    })
}

/// The statement as one self-contained HTML page.
pub fn html(statement: &Statement, lang: Lang) -> Result<Vec<u8>> {
    let mut env = Environment::new();
    // The template's name ends in .html, which turns escaping on; say so
    // explicitly so that a rename cannot turn it off.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template(TEMPLATE_NAME, TEMPLATE)
        .map_err(|e| Error::Usage(format!("the statement template is broken: {e}")))?;
    let template = env.get_template(TEMPLATE_NAME).expect("just added");
    let page = template
        .render(minijinja::value::Serde(view(statement, lang)))
        .map_err(|e| Error::Usage(format!("rendering the statement failed: {e}")))?;
    Ok(page.into_bytes())
}

fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, field);
    }
    out.push('\n');
}

/// The settlement row's columns as CSV total lines of `record`: the count
/// in the `count` column, each amount in the `amount` column.
fn total_lines(
    out: &mut String,
    record: &str,
    settlement_date: &str,
    merchant: &str,
    source: &str,
    row: &SettlementRow,
) {
    let mut line = |column: &str, amount: &str, count: &str| {
        csv_line(
            out,
            &[
                record,
                settlement_date,
                merchant,
                "",
                column,
                amount,
                "",
                "",
                "",
                "",
                count,
                source,
                "",
            ],
        );
    };
    line("txn_count", "", &row.txn_count.to_string());
    for (column, value) in AMOUNT_COLUMNS.into_iter().zip(row.amounts()) {
        line(column, &format_fen(value), "");
    }
}

/// The statement as CSV: each posting of the period (the journal's
/// columns after `record`), each date's totals after its postings, and the
/// period's totals last (docs/STATEMENT.md).
pub fn csv(statement: &Statement) -> String {
    let mut out = String::from(CSV_HEADER);
    let merchant = statement.merchant.as_str();
    for day in &statement.days {
        let day_text = date(day.date);
        for p in &day.postings {
            let seq = p.seq.to_string();
            let amount = format_fen(i128::from(p.amount_fen));
            let count = p.count.map(|c| c.to_string()).unwrap_or_default();
            csv_line(
                &mut out,
                &[
                    "posting",
                    &day_text,
                    merchant,
                    &seq,
                    p.kind.code(),
                    &amount,
                    &p.category,
                    &p.card,
                    &p.rate,
                    &p.capped,
                    &count,
                    &p.source,
                    &p.detail,
                ],
            );
        }
        total_lines(&mut out, "day_total", &day_text, merchant, "", &day.row);
    }
    let period = format!("from={};to={}", date(statement.from), date(statement.to));
    let totals = statement.totals;
    total_lines(&mut out, "period_total", "", merchant, &period, &totals);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands_exactly() {
        assert_eq!(grouped(0), "0.00");
        assert_eq!(grouped(-5), "-0.05");
        assert_eq!(grouped(99_999), "999.99");
        assert_eq!(grouped(100_000), "1,000.00");
        assert_eq!(grouped(-123_456_789), "-1,234,567.89");
        assert_eq!(grouped(100_000_000_000), "1,000,000,000.00");
    }

    #[test]
    fn rates_become_percentages_through_ppm() {
        assert_eq!(percent("0.0049"), "0.49%");
        assert_eq!(percent("0"), "0%");
        assert_eq!(percent("0.00385"), "0.385%");
        assert_eq!(percent("1"), "100%");
        assert_eq!(percent("x"), "x");
    }
}
