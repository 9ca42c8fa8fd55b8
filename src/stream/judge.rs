//! Step 3 of RULES.md 3.3 as the publisher makes it: a `txn_id` already
//! taken by an earlier row (in file order) that passed steps 1 and 2 makes
//! a duplicate, the first wins.
//!
//! The rule reads only rows before the one judged, and steps 1 and 2 read
//! only the row itself, so one reader of the input in file order (the
//! publisher, which makes the stream's order) judges every row exactly as
//! the batch run does, with no exchange between partitions. Ids that an
//! earlier run took (`--state-in`) are judged by the workers, which hold
//! the starting state's index. This module must not judge steps 4 to 6.

use std::path::Path;

use hashbrown::HashMap;

use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::ingest::csv::Record;
use crate::ingest::header::Header;
use crate::ingest::txn::{self, RowContext, TxnColumns};
use crate::ingest::{Merchants, merchants};

/// The most distinct ids a judge holds: about 60 bytes each, so 6 GB at
/// the limit. A day of a busy acquirer is far below it.
pub const JUDGE_IDS_MAX: usize = 100_000_000;

/// The first row of each id seen so far.
pub struct Judge {
    settings: Settings,
    /// No merchant: steps 1 and 2 do not read master data.
    merchants: Merchants,
    columns: Vec<(TxnColumns, Option<usize>)>,
    first: HashMap<Box<[u8]>, (u32, u64), foldhash::fast::FixedState>,
    arena: Vec<u8>,
}

impl Judge {
    /// A judge for rows read in the time zone of `settings` (a naive `ts`
    /// is read in it; steps 1 and 2 read nothing else of it).
    pub fn new(settings: Settings) -> Judge {
        let merchants =
            merchants::parse(b"merchant_id,mcc,activated_on,deposit\n", "(no merchants)")
                .expect("an empty merchants file parses");
        Judge {
            settings,
            merchants,
            columns: Vec::new(),
            first: HashMap::default(),
            arena: Vec::new(),
        }
    }

    /// A judge with the configuration at `path`.
    pub fn with_config(path: &Path) -> Result<Judge> {
        Ok(Judge::new(config::load(path)?))
    }

    /// Starts file `file_index` (files come in order, each once).
    pub fn start_file(&mut self, file_index: u32, header: &Header) {
        assert_eq!(file_index as usize, self.columns.len(), "files in order");
        self.columns.push((
            TxnColumns::new(header.field_count, &header.columns),
            header.columns[0],
        ));
    }

    /// Judges the record on `line` of file `file_index`, whose bytes are
    /// `raw`: the first row of its id when it is a duplicate.
    pub fn judge(
        &mut self,
        file_index: u32,
        line: u64,
        record: &Record,
        raw: &[u8],
    ) -> Result<Option<(u32, u64)>> {
        let (columns, txn_id_column) = &self.columns[file_index as usize];
        let context = RowContext {
            settings: &self.settings,
            merchants: &self.merchants,
            through: None,
            state_horizon: None,
            terminal_ids: false,
        };
        self.arena.clear();
        if txn::parse_row(record, raw, columns, &context, &mut self.arena, 0).is_err() {
            // Failed step 1 or 2: neither a duplicate nor a first row.
            return Ok(None);
        }
        let id = record.field_or_empty(*txn_id_column);
        if let Some(&first) = self.first.get(id) {
            return Ok(Some(first));
        }
        if self.first.len() >= JUDGE_IDS_MAX {
            return Err(Error::Usage(format!(
                "the publisher's duplicate judge holds {JUDGE_IDS_MAX} ids, its limit: publish a day in smaller streams"
            )));
        }
        self.first.insert(id.into(), (file_index, line));
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::records::Records;

    const CONFIG: &str = "[[category]]\nname = \"general\"\ndefault = true\ndebit_rate = \"0.0038\"\ncredit_rate = \"0.0049\"\n";

    #[test]
    fn the_first_row_that_passes_steps_1_and_2_wins() {
        let settings = config::parse(Path::new("t.toml"), CONFIG).unwrap();
        let mut judge = Judge::new(settings);
        let text = "txn_id,merchant_id,ts,type,amount,card\n\
            a,m1,2026-11-20 10:00:00,purchase,x,debit\n\
            a,m2,2026-11-20 10:00:00,purchase,1.00,debit\n\
            a,m3,2026-11-20 10:00:00,purchase,1.00,debit\n\
            b,unknown,2026-11-20 10:00:00,purchase,1.00,debit\n";
        let mut records = Records::new(text.as_bytes(), "t.csv").unwrap();
        judge.start_file(0, &records.header);
        let mut verdicts = Vec::new();
        while let Some(cut) = records.next() {
            let (line, bytes) = (cut.line, cut.bytes.to_vec());
            let record = cut.record;
            verdicts.push(judge.judge(0, line, record, &bytes).unwrap());
        }
        // Line 2 fails step 2 (bad amount), so line 3 takes the id; a
        // merchant that master data lacks is step 4, after step 3.
        assert_eq!(verdicts, [None, None, Some((0, 3)), None]);
    }
}
