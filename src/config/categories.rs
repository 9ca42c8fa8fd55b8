//! Fee categories and the MCC lookup table (RULES.md 1.4 and 3.1).

use super::{Doc, limits};
use crate::error::Result;

/// A merchant category code, 0000 to 9999.
pub type Mcc = u16;
const MCC_COUNT: usize = 10_000;

/// One category: rates per card kind and optional per-transaction caps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    pub name: String,
    pub debit_rate_ppm: u32,
    pub credit_rate_ppm: u32,
    pub debit_cap_fen: Option<i64>,
    pub credit_cap_fen: Option<i64>,
}

/// All categories, with a direct table from MCC to category index.
#[derive(Clone, Debug)]
pub struct Categories {
    list: Vec<Category>,
    index_by_mcc: Box<[u16]>,
    default_index: u16,
}

impl Categories {
    /// The category index of an MCC: its listed category, else the default.
    pub fn index_of(&self, mcc: Mcc) -> u16 {
        self.index_by_mcc[usize::from(mcc)]
    }

    pub fn get(&self, index: u16) -> &Category {
        &self.list[usize::from(index)]
    }

    /// How many categories there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The index of the category with exactly this name.
    pub fn position_of_name(&self, name: &[u8]) -> Option<u16> {
        self.list
            .iter()
            .position(|c| c.name.as_bytes() == name)
            .map(|i| i as u16)
    }

    /// The index of the category with this name, else of the default.
    pub fn index_of_name(&self, name: &[u8]) -> u16 {
        self.position_of_name(name).unwrap_or(self.default_index)
    }
}

/// Parses `"5812"` or `"5811-5814"` into an inclusive range.
fn parse_codes(text: &str) -> Option<(Mcc, Mcc)> {
    let code = |s: &str| {
        (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<Mcc>().ok())
            .flatten()
    };
    match text.split_once('-') {
        None => code(text).map(|c| (c, c)),
        Some((low, high)) => {
            let (low, high) = (code(low)?, code(high)?);
            (low <= high).then_some((low, high))
        }
    }
}

pub(super) fn parse(
    doc: &Doc,
    value: Option<&toml::Value>,
    max_rate_ppm: u32,
) -> Result<Categories> {
    let tables = match value {
        Some(toml::Value::Array(items)) if !items.is_empty() => items,
        Some(toml::Value::Array(_)) | None => {
            return Err(doc.error("category", "at least one [[category]] is required"));
        }
        Some(_) => return Err(doc.error("category", "must be an array of tables ([[category]])")),
    };
    if tables.len() > limits::CATEGORIES_MAX {
        return Err(doc.error(
            "category",
            format!("more than {} categories", limits::CATEGORIES_MAX),
        ));
    }
    const UNSET: u16 = u16::MAX;
    let mut index_by_mcc = vec![UNSET; MCC_COUNT];
    let mut list = Vec::with_capacity(tables.len());
    let mut default_index = None;
    for (position, item) in tables.iter().enumerate() {
        let toml::Value::Table(table) = item else {
            return Err(doc.error(&format!("category[{position}]"), "must be a table"));
        };
        let name = match doc.string(table, "name", &format!("category[{position}].name"))? {
            Some(name) if !name.trim().is_empty() => name.to_string(),
            _ => {
                return Err(doc.error(
                    &format!("category[{position}].name"),
                    "is required and must not be empty",
                ));
            }
        };
        let key = |field: &str| format!("category[{position}] ({}).{field}", super::shown(&name));
        if let Some(unknown) = table.keys().find(|k| {
            ![
                "name",
                "mcc",
                "default",
                "debit_rate",
                "credit_rate",
                "debit_cap",
                "credit_cap",
            ]
            .contains(&k.as_str())
        }) {
            return Err(doc.error(
                &key(&super::shown(unknown)),
                "is not a known category setting",
            ));
        }
        if list.iter().any(|c: &Category| c.name == name) {
            return Err(doc.error(&key("name"), "names a category twice"));
        }
        let index = position as u16;
        match table.get("default") {
            None | Some(toml::Value::Boolean(false)) => {}
            Some(toml::Value::Boolean(true)) => {
                if let Some(first) = default_index.replace(index) {
                    let first: &Category = &list[usize::from(first)];
                    return Err(doc.error(
                        &key("default"),
                        format!("a second default category (the first is {})", first.name),
                    ));
                }
            }
            Some(_) => return Err(doc.error(&key("default"), "must be true or false")),
        }
        let codes = match table.get("mcc") {
            None => &Vec::new(),
            Some(toml::Value::Array(codes)) => codes,
            Some(_) => {
                return Err(doc.error(
                    &key("mcc"),
                    "must be an array of strings such as [\"5812\", \"5811-5814\"]",
                ));
            }
        };
        for code in codes {
            let text = code.as_str().unwrap_or_default();
            let (low, high) = parse_codes(text).ok_or_else(|| {
                doc.error(
                    &key("mcc"),
                    format!(
                        "{code} is not a 4-digit code or an ascending range such as \"9211-9399\""
                    ),
                )
            })?;
            for mcc in low..=high {
                let slot = &mut index_by_mcc[usize::from(mcc)];
                if *slot != UNSET {
                    let other = if *slot == index {
                        name.clone()
                    } else {
                        list[usize::from(*slot)].name.clone()
                    };
                    return Err(doc.error(
                        &key("mcc"),
                        format!("code {mcc:04} is already listed in category {other}"),
                    ));
                }
                *slot = index;
            }
        }
        let rate = |field: &str| -> Result<u32> {
            let rate_ppm = doc
                .rate(table, field, &key(field))?
                .ok_or_else(|| doc.error(&key(field), "is required"))?;
            if rate_ppm > max_rate_ppm {
                return Err(doc.error(
                    &key(field),
                    format!(
                        "{} is above max_rate {}",
                        crate::money::format_rate(rate_ppm),
                        crate::money::format_rate(max_rate_ppm)
                    ),
                ));
            }
            Ok(rate_ppm)
        };
        let debit_rate_ppm = rate("debit_rate")?;
        let credit_rate_ppm = rate("credit_rate")?;
        let debit_cap_fen = doc.amount(table, "debit_cap", &key("debit_cap"))?;
        let credit_cap_fen = doc.amount(table, "credit_cap", &key("credit_cap"))?;
        list.push(Category {
            name,
            debit_rate_ppm,
            credit_rate_ppm,
            debit_cap_fen,
            credit_cap_fen,
        });
    }
    let default_index =
        default_index.ok_or_else(|| doc.error("category", "no category has default = true"))?;
    for slot in &mut index_by_mcc {
        if *slot == UNSET {
            *slot = default_index;
        }
    }
    Ok(Categories {
        list,
        index_by_mcc: index_by_mcc.into_boxed_slice(),
        default_index,
    })
}
