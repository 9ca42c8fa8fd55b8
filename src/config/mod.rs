//! `settle.toml`: the policy (zone, lag, rounding, limits, deposit and
//! deactivation terms) and the fee categories with their MCC lookup.
//!
//! This module validates the configuration once, completely, and hands out
//! a `Settings` that the rest of the engine trusts. It must not read any
//! other input, and every error it returns names the key at fault.
#![forbid(unsafe_code)]

pub mod categories;
pub mod limits;

use std::path::Path;

use crate::calendar;
use crate::error::{Error, Result};
use crate::money::{self, Rounding};
pub use categories::{Categories, Category, Mcc};

/// What a refund does to the purchase's fee (RULES.md 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundFee {
    Kept,
    Proportional,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub zone_offset_s: i32,
    pub settlement_lag_days: i32,
    pub rounding: Rounding,
    pub max_rate_ppm: u32,
    pub max_txn_amount_fen: i64,
    pub refund_fee: RefundFee,
    pub refund_retention_days: i32,
    pub deposit_refund_volume_fen: i64,
    pub deposit_refund_window_days: i32,
    pub deactivation_fee_fen: i64,
    pub return_window_days: i32,
    pub categories: Categories,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Settings> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("{}: cannot read: {e}", path.display())))?;
    parse_bytes(path, &bytes)
}

/// Validates a configuration file's bytes, as read by a caller that also
/// digests them (control.json, a partition's description).
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Settings> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::config(path, "(file)", format!("is not valid UTF-8 ({e})")))?;
    parse(path, text)
}

/// Validates a configuration given as text; `path` only names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Settings> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Error::config(path, "(syntax)", e.to_string().replace('\n', " "))
    })?;
    let doc = Doc { path };
    doc.reject_unknown(
        &table,
        "",
        &[
            "timezone",
            "settlement_lag_days",
            "rounding",
            "max_rate",
            "max_txn_amount",
            "refund_fee",
            "refund_retention_days",
            "deposit",
            "deactivation",
            "category",
        ],
    )?;
    let empty = toml::Table::new();
    let deposit = doc.sub_table(&table, "deposit")?.unwrap_or(&empty);
    doc.reject_unknown(
        deposit,
        "deposit.",
        &["refund_volume", "refund_window_days"],
    )?;
    let deactivation = doc.sub_table(&table, "deactivation")?.unwrap_or(&empty);
    doc.reject_unknown(
        deactivation,
        "deactivation.",
        &["fee", "return_window_days"],
    )?;

    let zone_text = doc
        .string(&table, "timezone", "timezone")?
        .unwrap_or("+08:00");
    let zone_offset_s = match zone_text {
        "Z" | "UTC" => 0,
        other => calendar::parse_offset(other.as_bytes()).ok_or_else(|| {
            doc.error(
                "timezone",
                format!("{other:?} is not a fixed offset like \"+08:00\""),
            )
        })?,
    };
    let rounding = match doc
        .string(&table, "rounding", "rounding")?
        .unwrap_or("half_up")
    {
        "half_up" => Rounding::HalfUp,
        "half_even" => Rounding::HalfEven,
        other => {
            return Err(doc.error("rounding", format!("{other:?} is not half_up or half_even")));
        }
    };
    let refund_fee = match doc
        .string(&table, "refund_fee", "refund_fee")?
        .unwrap_or("kept")
    {
        "kept" => RefundFee::Kept,
        "proportional" => RefundFee::Proportional,
        other => {
            return Err(doc.error(
                "refund_fee",
                format!("{other:?} is not kept or proportional"),
            ));
        }
    };
    let max_rate_ppm = doc.rate(&table, "max_rate", "max_rate")?.unwrap_or(4900);
    let categories = categories::parse(&doc, table.get("category"), max_rate_ppm)?;

    Ok(Settings {
        zone_offset_s,
        settlement_lag_days: doc
            .days(
                &table,
                "settlement_lag_days",
                "settlement_lag_days",
                0,
                limits::SETTLEMENT_LAG_DAYS_MAX,
            )?
            .unwrap_or(1),
        rounding,
        max_rate_ppm,
        max_txn_amount_fen: doc
            .amount(&table, "max_txn_amount", "max_txn_amount")?
            .unwrap_or(5_000_000),
        refund_fee,
        refund_retention_days: doc
            .days(
                &table,
                "refund_retention_days",
                "refund_retention_days",
                0,
                limits::WINDOW_DAYS_MAX,
            )?
            .unwrap_or(180),
        deposit_refund_volume_fen: doc
            .amount(deposit, "refund_volume", "deposit.refund_volume")?
            .unwrap_or(3_000_000),
        deposit_refund_window_days: doc
            .days(
                deposit,
                "refund_window_days",
                "deposit.refund_window_days",
                1,
                limits::WINDOW_DAYS_MAX,
            )?
            .unwrap_or(90),
        deactivation_fee_fen: doc
            .amount(deactivation, "fee", "deactivation.fee")?
            .unwrap_or(19_900),
        return_window_days: doc
            .days(
                deactivation,
                "return_window_days",
                "deactivation.return_window_days",
                0,
                limits::WINDOW_DAYS_MAX,
            )?
            .unwrap_or(30),
        categories,
    })
}

/// Typed access to TOML values that names the key in every error.
pub(crate) struct Doc<'a> {
    path: &'a Path,
}

impl Doc<'_> {
    pub(crate) fn error(&self, key: &str, problem: impl Into<String>) -> Error {
        Error::config(self.path, key, problem)
    }

    fn reject_unknown(&self, table: &toml::Table, prefix: &str, known: &[&str]) -> Result<()> {
        match table.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => {
                Err(self.error(&format!("{prefix}{}", shown(key)), "is not a known setting"))
            }
            None => Ok(()),
        }
    }

    fn sub_table<'t>(&self, table: &'t toml::Table, key: &str) -> Result<Option<&'t toml::Table>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Table(sub)) => Ok(Some(sub)),
            Some(_) => Err(self.error(key, "must be a table")),
        }
    }

    pub(crate) fn string<'t>(
        &self,
        table: &'t toml::Table,
        key: &str,
        full_key: &str,
    ) -> Result<Option<&'t str>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(self.error(full_key, "must be a string")),
        }
    }

    /// A decimal is written as a string (`"0.0049"`) so that no float ever
    /// holds it; a bare integer is accepted too.
    fn decimal_text(
        &self,
        table: &toml::Table,
        key: &str,
        full_key: &str,
    ) -> Result<Option<String>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text.clone())),
            Some(toml::Value::Integer(value)) => Ok(Some(value.to_string())),
            Some(toml::Value::Float(_)) => Err(self.error(
                full_key,
                "must be a decimal string such as \"0.0049\", not a float",
            )),
            Some(_) => Err(self.error(full_key, "must be a decimal string")),
        }
    }

    pub(crate) fn rate(
        &self,
        table: &toml::Table,
        key: &str,
        full_key: &str,
    ) -> Result<Option<u32>> {
        let Some(text) = self.decimal_text(table, key, full_key)? else {
            return Ok(None);
        };
        money::parse_rate_ppm(&text).map(Some).ok_or_else(|| {
            self.error(
                full_key,
                format!("{text:?} is not a rate between 0 and 1 with at most 6 fractional digits"),
            )
        })
    }

    pub(crate) fn amount(
        &self,
        table: &toml::Table,
        key: &str,
        full_key: &str,
    ) -> Result<Option<i64>> {
        let Some(text) = self.decimal_text(table, key, full_key)? else {
            return Ok(None);
        };
        money::parse_amount_fen(text.as_bytes(), false)
            .map(Some)
            .map_err(|e| self.error(full_key, format!("{text:?} {}", e.describe())))
    }

    fn days(
        &self,
        table: &toml::Table,
        key: &str,
        full_key: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<i32>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(value)) if (min..=max).contains(value) => {
                Ok(Some(*value as i32))
            }
            Some(toml::Value::Integer(value)) => {
                Err(self.error(full_key, format!("{value} is outside {min}..={max}")))
            }
            Some(_) => Err(self.error(full_key, "must be an integer number of days")),
        }
    }
}

#[cfg(test)]
mod tests;

/// A key or name as an error message shows it: quoted when it is empty or
/// holds a control character or a space at either end, so that the message
/// stays on one line and says which key it means.
pub(crate) fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    let plain = !name.is_empty() && !name.chars().any(char::is_control) && name.trim() == name;
    if plain {
        name.into()
    } else {
        format!("{name:?}").into()
    }
}
