//! Merchant master data (RULES.md 1.2). Master data must be clean: every bad
//! line is listed in one fatal error.

use crate::calendar::{self, Day};
use crate::config::{Mcc, limits};
use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};
use crate::ingest::header;
use crate::ingest::merchant_ids::IdTable;
use crate::money;

/// One merchant, as registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merchant {
    pub id: String,
    pub mcc: Mcc,
    pub activated_on: Day,
    pub deposit_fen: i64,
    pub deactivated_on: Option<Day>,
}

/// All merchants, sorted by id bytewise, so that a dense index orders rows
/// exactly as the settlement files must.
#[derive(Debug, Default)]
pub struct Merchants {
    list: Vec<Merchant>,
    ids: IdTable,
    /// What every row reads of its merchant, 12 bytes each: the rows visit
    /// merchants at random, and `Merchant` is five times larger.
    hot: Vec<MerchantHot>,
}

/// The fields of a merchant that the checks and fees of each row read.
#[derive(Clone, Copy, Debug)]
pub struct MerchantHot {
    pub activated_on: Day,
    /// The deactivation date, or `Day::MAX`.
    pub last_day: Day,
    pub mcc: Mcc,
}

impl Merchants {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, index: u32) -> &Merchant {
        &self.list[index as usize]
    }

    pub fn all(&self) -> &[Merchant] {
        &self.list
    }

    pub fn index_of(&self, id: &[u8]) -> Option<u32> {
        self.ids.get(id)
    }

    /// The table that `index_of` reads, for lookups in batches.
    pub fn id_table(&self) -> &IdTable {
        &self.ids
    }

    /// The dates and MCC of merchant `index`.
    pub fn hot(&self, index: u32) -> MerchantHot {
        self.hot[index as usize]
    }

    /// The id of merchant `index`, from one contiguous buffer: cheaper than
    /// `get(index).id` when every merchant is visited in order.
    pub fn id_of(&self, index: u32) -> &str {
        self.ids.id(index)
    }

    /// Builds the table from merchants sorted by id bytewise, ids unique.
    fn from_sorted(list: Vec<Merchant>) -> Merchants {
        let ids = IdTable::new(list.iter().map(|m| m.id.as_str()));
        assert!(
            list.windows(2)
                .all(|pair| pair[0].id.as_bytes() < pair[1].id.as_bytes()),
            "merchant ids are sorted and unique"
        );
        let hot = list
            .iter()
            .map(|m| MerchantHot {
                activated_on: m.activated_on,
                last_day: m.deactivated_on.unwrap_or(Day::MAX),
                mcc: m.mcc,
            })
            .collect();
        Merchants { list, ids, hot }
    }
}

const COLUMNS: [(&str, bool); 5] = [
    ("merchant_id", true),
    ("mcc", true),
    ("activated_on", true),
    ("deposit", true),
    ("deactivated_on", false),
];

/// Parses a 4-digit MCC.
pub fn parse_mcc(text: &[u8]) -> Option<Mcc> {
    if text.len() != 4 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0, |acc, d| acc * 10 + Mcc::from(d - b'0')))
}

fn parse_row(
    record: &Record,
    raw: &[u8],
    columns: &[Option<usize>],
    field_count: usize,
) -> std::result::Result<Merchant, String> {
    if record.unterminated {
        return Err("a quoted field is not closed before the end of the file".into());
    }
    if std::str::from_utf8(raw).is_err() {
        return Err("the row is not valid UTF-8".into());
    }
    if record.field_count() != field_count {
        return Err(format!(
            "has {} fields, the header has {field_count}",
            record.field_count()
        ));
    }
    let field = |i: usize| record.field_or_empty(columns[i]);
    let text = |i: usize| {
        std::str::from_utf8(field(i)).map_err(|_| format!("{} is not valid UTF-8", COLUMNS[i].0))
    };
    let id = text(0)?;
    if id.is_empty() {
        return Err("merchant_id is empty".into());
    }
    let mcc = parse_mcc(field(1))
        .ok_or_else(|| format!("mcc {:?} is not 4 digits", text(1).unwrap_or("?")))?;
    let activated_on = calendar::parse_date(field(2)).ok_or_else(|| {
        format!(
            "activated_on {:?} is not a date YYYY-MM-DD",
            text(2).unwrap_or("?")
        )
    })?;
    let deposit_fen = money::parse_amount_fen(field(3), false)
        .map_err(|e| format!("deposit {:?} {}", text(3).unwrap_or("?"), e.describe()))?;
    let deactivated_on = match field(4) {
        [] => None,
        date => {
            let day = calendar::parse_date(date).ok_or_else(|| {
                format!(
                    "deactivated_on {:?} is not a date YYYY-MM-DD",
                    text(4).unwrap_or("?")
                )
            })?;
            if day < activated_on {
                return Err(format!(
                    "deactivated_on {} is before activated_on {}",
                    calendar::format_date(day),
                    calendar::format_date(activated_on)
                ));
            }
            Some(day)
        }
    };
    Ok(Merchant {
        id: id.to_string(),
        mcc,
        activated_on,
        deposit_fen,
        deactivated_on,
    })
}

/// Parses the merchants file; `file` names it in errors.
pub fn parse(buf: &[u8], file: &str) -> Result<Merchants> {
    let header = header::read(buf, file, &COLUMNS)?;
    let mut tokenizer = Tokenizer::new(buf, header.data_start);
    let mut record = Record::default();
    let mut list = Vec::new();
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    while tokenizer.next_record(&mut record) {
        let line = header.lines_before_data + record.lines_before + 1;
        match parse_row(
            &record,
            &buf[record.start..record.end],
            &header.columns,
            header.field_count,
        ) {
            Ok(merchant) => {
                list.push(merchant);
                lines.push(line);
            }
            Err(problem) => problems.push((line, problem)),
        }
    }
    if list.len() > limits::MERCHANTS_MAX {
        return Err(Error::input(
            file,
            format!("more than {} merchants", limits::MERCHANTS_MAX),
        ));
    }
    // One stable sort by id serves both the duplicate check (equal ids end
    // up adjacent, first line first) and the table's order.
    let mut numbered: Vec<(Merchant, u64)> = list.into_iter().zip(lines).collect();
    numbered.sort_by(|(a, _), (b, _)| a.id.as_bytes().cmp(b.id.as_bytes()));
    for pair in numbered.windows(2) {
        let ((first, first_line), (again, line)) = (&pair[0], &pair[1]);
        if first.id == again.id {
            problems.push((
                *line,
                format!("merchant_id {:?} is already on line {first_line}", again.id),
            ));
        }
    }
    if problems.is_empty() {
        return Ok(Merchants::from_sorted(
            numbered.into_iter().map(|(m, _)| m).collect(),
        ));
    }
    problems.sort();
    let count = problems.len();
    let mut message = format!(
        "{count} bad merchant line{}:",
        if count == 1 { "" } else { "s" }
    );
    for (line, problem) in problems.iter().take(limits::BAD_LINES_LISTED_MAX) {
        message.push_str(&format!("\n  line {line}: {problem}"));
    }
    if count > limits::BAD_LINES_LISTED_MAX {
        message.push_str(&format!(
            "\n  ... and {} more",
            count - limits::BAD_LINES_LISTED_MAX
        ));
    }
    Err(Error::input(file, message))
}
