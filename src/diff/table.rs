//! A `Diff` as aligned text for a terminal (`settle diff`'s default
//! output): the two runs, the configuration keys that differ, the totals,
//! the breakdown by category and card, by settlement date, and the top
//! merchants by change.
//!
//! It only lays out what the `Diff` holds (and B − A); it must not compute
//! other figures or print (main prints).

use crate::calendar;
use crate::money::format_fen;

use super::{Diff, Pair, RunSide, Unit};

/// Columns of text, the first `left` of them aligned left and the others
/// right, each as wide as its widest cell, two spaces apart, indented.
fn aligned(header: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let width = |text: &str| text.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(" ");
        for (k, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - width(cell));
            line.push(' ');
            if k > 0 {
                line.push(' ');
            }
            if k < left {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn percent(pair: Pair) -> String {
    pair.delta_basis_points()
        .map_or(String::new(), |points| format!("{}%", format_fen(points)))
}

fn fen3(pair: Pair) -> [String; 3] {
    [
        format_fen(pair.a),
        format_fen(pair.b),
        format_fen(pair.delta()),
    ]
}

fn run_line(label: &str, side: &RunSide) -> String {
    let through = side.through.map_or(String::new(), |d| {
        format!(", through {}", calendar::format_date(d))
    });
    format!(
        "{label}: {}  (config {}, {}..{}{through})\n",
        side.dir.display(),
        side.config_path,
        calendar::format_date(side.start),
        calendar::format_date(side.horizon),
    )
}

/// The whole comparison as text, with the first `top` ranked merchants.
pub fn render(diff: &Diff, top: usize) -> String {
    let mut out = String::new();
    out.push_str(&run_line("A", &diff.a));
    out.push_str(&run_line("B", &diff.b));
    if diff.input_differences.is_empty() {
        out.push_str("Inputs: the same transactions, merchants, adjustments and dates\n");
    } else {
        out.push_str(&format!(
            "Inputs: DIFFERENT ({}); compared as asked\n",
            diff.input_differences.join("; ")
        ));
    }

    out.push_str("\nConfiguration\n");
    if diff.config.same_digest {
        out.push_str("  the same file (same SHA-256)\n");
    }
    for change in &diff.config.keys {
        out.push_str(&format!("  {change}\n"));
    }
    for note in &diff.config.notes {
        out.push_str(&format!("  note: {note}\n"));
    }

    out.push_str("\nTotals\n");
    let rows: Vec<Vec<String>> = diff
        .totals
        .iter()
        .map(|total| {
            let pair = total.pair;
            match total.unit {
                Unit::Fen => {
                    let [a, b, d] = fen3(pair);
                    vec![total.name.to_string(), a, b, d, percent(pair)]
                }
                Unit::Count => vec![
                    total.name.to_string(),
                    pair.a.to_string(),
                    pair.b.to_string(),
                    pair.delta().to_string(),
                    percent(pair),
                ],
            }
        })
        .collect();
    out.push_str(&aligned(&["", "A", "B", "B − A", "change"], &rows, 1));

    out.push_str("\nBy category and card (purchases and fees from the journals)\n");
    let rows: Vec<Vec<String>> = diff
        .by_category
        .iter()
        .map(|c| {
            let [fees_a, fees_b, fees_d] = fen3(c.fees_fen);
            vec![
                c.category.clone(),
                c.card.clone(),
                c.purchases_count.a.to_string(),
                format_fen(c.purchases_fen.a),
                fees_a,
                fees_b,
                fees_d,
                percent(c.fees_fen),
            ]
        })
        .collect();
    out.push_str(&aligned(
        &[
            "category",
            "card",
            "purchases",
            "amount A",
            "fees A",
            "fees B",
            "B − A",
            "change",
        ],
        &rows,
        2,
    ));
    // Purchases are the same in both runs unless the inputs or the
    // category table differ; then B's are shown too.
    for c in diff
        .by_category
        .iter()
        .filter(|c| c.purchases_count.delta() != 0 || c.purchases_fen.delta() != 0)
    {
        out.push_str(&format!(
            "  note: {} {} purchases differ: {} for {} in A, {} for {} in B\n",
            c.category,
            c.card,
            c.purchases_count.a,
            format_fen(c.purchases_fen.a),
            c.purchases_count.b,
            format_fen(c.purchases_fen.b)
        ));
    }

    out.push_str("\nBy settlement date\n");
    let rows: Vec<Vec<String>> = diff
        .by_date
        .iter()
        .map(|d| {
            let pair = |column: &str| Pair {
                a: d.a.amount(column),
                b: d.b.amount(column),
            };
            let [fees_a, fees_b, fees_d] = fen3(pair("fees"));
            let [pay_a, pay_b, pay_d] = fen3(pair("payout"));
            vec![
                calendar::format_date(d.date),
                d.a.rows.to_string(),
                d.b.rows.to_string(),
                fees_a,
                fees_b,
                fees_d,
                pay_a,
                pay_b,
                pay_d,
            ]
        })
        .collect();
    out.push_str(&aligned(
        &[
            "date", "rows A", "rows B", "fees A", "fees B", "B − A", "payout A", "payout B",
            "B − A",
        ],
        &rows,
        1,
    ));

    let shown = top.min(diff.merchants.len());
    out.push_str(&format!(
        "\nMerchants: {} of {} changed; the top {shown} by |payout change|, then |fees change|\n",
        diff.merchants.len(),
        diff.merchants_compared
    ));
    let rows: Vec<Vec<String>> = diff
        .merchants
        .iter()
        .take(top)
        .enumerate()
        .map(|(k, m)| {
            let [fees_a, fees_b, fees_d] = fen3(m.pair("fees"));
            let [pay_a, pay_b, pay_d] = fen3(m.pair("payout"));
            vec![
                (k + 1).to_string(),
                m.merchant_id.clone(),
                m.a.rows.to_string(),
                m.b.rows.to_string(),
                fees_a,
                fees_b,
                fees_d,
                pay_a,
                pay_b,
                pay_d,
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&aligned(
            &[
                "#",
                "merchant_id",
                "rows A",
                "rows B",
                "fees A",
                "fees B",
                "B − A",
                "payout A",
                "payout B",
                "B − A",
            ],
            &rows,
            2,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_left_then_right() {
        let text = aligned(
            &["name", "A", "B"],
            &[
                vec!["fees".into(), "1.00".into(), "10.00".into()],
                vec!["purchases".into(), "100.00".into(), "−1".into()],
            ],
            1,
        );
        assert_eq!(
            text,
            "  name            A      B\n  fees         1.00  10.00\n  purchases  100.00     −1\n"
        );
    }

    #[test]
    fn a_percentage_is_exact_to_the_basis_point() {
        // −4/49 = −8.163…%: −8.16%; a half basis point rounds away from zero.
        assert_eq!(percent(Pair { a: 49, b: 45 }), "-8.16%");
        assert_eq!(
            percent(Pair {
                a: 20_000,
                b: 20_001
            }),
            "0.01%"
        );
        assert_eq!(percent(Pair { a: 0, b: 5 }), "");
        assert_eq!(percent(Pair { a: -200, b: -100 }), "50.00%");
    }
}
