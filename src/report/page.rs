//! The report's page as plain data (`Page`, `Section`, `Chart`, `Table`,
//! `Cell`) and the HTML it renders to through minijinja
//! (`templates/report.html`, HTML auto-escaped).
//!
//! It owns the page's shape and the formatting of figures for people
//! (amounts through `crate::money`, shares as integer basis points rounded
//! half up). It must not compute money or know what a section says: the
//! sections are built in `summary` and `sections` from `ReportData`. A new
//! section is a function from its figures to a `Section`, pushed onto
//! `Page::sections`; the template needs no change.

use minijinja::{AutoEscape, Environment};
use serde_json::{Value, json};

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::money::{self, Rounding, format_fen_grouped};

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("templates/report.html");

/// Tables with more rows than this start folded (`<details>`).
pub(super) const OPEN_ROWS_MAX: usize = 16;

/// The whole page.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub title: String,
    /// Under the title: the runs' settlement dates.
    pub subtitle: String,
    pub sections: Vec<Section>,
}

/// One section: a title, sentences, key facts, headline figures, charts
/// and tables, each optional.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// The HTML id (an anchor of the page's contents).
    pub id: String,
    pub title: String,
    pub lead: Vec<String>,
    pub facts: Vec<(String, String)>,
    pub figures: Vec<(String, String)>,
    pub charts: Vec<Chart>,
    pub tables: Vec<Table>,
}

/// One chart: its SVG (from `charts`) and a legend in the page's text.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub svg: String,
    pub legend: Vec<LegendItem>,
}

#[derive(Clone, Debug, Default)]
pub struct LegendItem {
    pub name: String,
    /// CSS colour.
    pub colour: String,
}

/// One table; `foot` is a totals row when not empty.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub title: String,
    pub head: Vec<Cell>,
    pub rows: Vec<Vec<Cell>>,
    pub foot: Vec<Cell>,
    /// Shown folded, with its title as the summary.
    pub folded: bool,
}

/// A table cell: text and how it is aligned or set.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub text: String,
    /// `num` (right-aligned figures), `code` (digests, ids) or empty.
    pub class: &'static str,
}

pub(super) fn text(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: "",
    }
}

pub(super) fn num(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: "num",
    }
}

pub(super) fn code(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: "code",
    }
}

/// A count with thousands separators: `1,234,567`.
pub(super) fn grouped_count(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

pub(super) fn whole(count: u64) -> Cell {
    num(grouped_count(count))
}

pub(super) fn fen(amount_fen: i128) -> Cell {
    num(format_fen_grouped(amount_fen))
}

pub(super) fn date(day: Day) -> String {
    calendar::format_date(day)
}

/// `part` as a share of `whole`, in whole basis points rounded half up,
/// always with two decimals so that a column of shares lines up: `12.35%`,
/// `12.50%`; a dash where no share can be given (a negative part or
/// nothing to share).
pub fn share(part: i128, whole: i128) -> String {
    if part < 0 || whole <= 0 || part > whole {
        return "–".into();
    }
    let basis_points = money::div_round(part * 10_000, whole, Rounding::HalfUp);
    assert!(basis_points <= 10_000, "a share is at most 100%");
    // Basis points are hundredths of a percent: two decimals, as fen are.
    format!("{}%", money::format_fen(basis_points))
}

impl Table {
    fn to_value(&self) -> Value {
        let cells = |row: &[Cell]| -> Vec<Value> {
            row.iter()
                .map(|c| json!({"text": c.text, "class": c.class}))
                .collect()
        };
        json!({
            "title": self.title,
            "head": cells(&self.head),
            "rows": self.rows.iter().map(|r| cells(r)).collect::<Vec<_>>(),
            "foot": cells(&self.foot),
            "folded": self.folded,
        })
    }
}

impl Section {
    fn to_value(&self) -> Value {
        let pairs = |pairs: &[(String, String)]| -> Vec<Value> {
            pairs
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()
        };
        json!({
            "id": self.id,
            "title": self.title,
            "lead": self.lead,
            "facts": pairs(&self.facts),
            "figures": pairs(&self.figures),
            "charts": self.charts.iter().map(|c| json!({
                "title": c.title,
                "svg": c.svg,
                "legend": c.legend.iter().map(|l| json!({"name": l.name, "colour": l.colour})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "tables": self.tables.iter().map(Table::to_value).collect::<Vec<_>>(),
        })
    }
}

/// The page as one self-contained HTML document.
pub fn html(page: &Page) -> Result<Vec<u8>> {
    let mut env = Environment::new();
    // Escaping on whatever the template's name; the charts' SVG is the one
    // value marked safe in the template (the SVG backend escapes its text).
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template(TEMPLATE_NAME, TEMPLATE)
        .map_err(|e| Error::Usage(format!("the report template is broken: {e}")))?;
    let template = env.get_template(TEMPLATE_NAME).expect("just added");
    let view = json!({
        "title": page.title,
        "subtitle": page.subtitle,
        "sections": page.sections.iter().map(Section::to_value).collect::<Vec<_>>(),
    });
    let html = template
        .render(minijinja::value::Serde(view))
        .map_err(|e| Error::Usage(format!("rendering the report failed: {e}")))?;
    Ok(html.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped_count(0), "0");
        assert_eq!(grouped_count(999), "999");
        assert_eq!(grouped_count(1_000), "1,000");
        assert_eq!(grouped_count(714_411), "714,411");
        assert_eq!(grouped_count(10_000_000), "10,000,000");
    }

    #[test]
    fn shares_are_basis_points_rounded_half_up() {
        assert_eq!(share(1, 3), "33.33%");
        assert_eq!(share(2, 3), "66.67%");
        assert_eq!(share(1, 8), "12.50%");
        // 1/20000 = 0.005%, half a basis point: rounds up to 0.01%.
        assert_eq!(share(1, 20_000), "0.01%");
        // 1/80000 = 0.00125%, an eighth of one: rounds down to 0%.
        assert_eq!(share(1, 80_000), "0.00%");
        assert_eq!(share(5, 5), "100.00%");
        assert_eq!(share(0, 5), "0.00%");
        assert_eq!(share(-1, 5), "–");
        assert_eq!(share(1, 0), "–");
    }
}
