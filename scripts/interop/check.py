#!/usr/bin/env python3
"""Interoperability check: settle's CSV and Parquet outputs in DuckDB,
Polars and pandas (docs/PARQUET.md).

Generates a small data set, settles it twice (--format csv and --format
parquet, both with --detail and adjustments), then loads every output file
unchanged in each tool and checks:

  types   amounts are exact decimals (DECIMAL(18,2)), dates are dates,
          counts are integers; never a float;
  totals  the sums of the settlement, journal and fee files equal
          control.json's totals to the fen, and the row counts its counts;
  same    the CSV and the Parquet file of each output agree row for row;
  diff    `settle diff` between the CSV run and a what-if run of the same
          inputs (dining's credit rate 0.49% -> 0.45%) gives the deltas that
          a DuckDB query over the two runs' settlement and journal files
          gives: the totals, by category and card, and by settlement date.

It prints one line per (tool, format) and exits 1 on any mismatch, so that
CI goes red. Each tool is a function in CHECKS returning its results; a
later check (a DuckDB query against `settle diff`, say) is one more.

Usage: check.py SETTLE_BINARY WORK_DIR [--rows N]
Needs duckdb, polars, pandas and pyarrow (.ci/run installs them into a
virtual environment).
"""

import argparse
import decimal
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa

# Every output file's columns with their types, as docs/PARQUET.md lists
# them: DECIMAL(18,2) amounts, DECIMAL(9,6) rates, DATE, BIGINT, VARCHAR.
AMOUNT, RATE, DATE, COUNT, TEXT = "DECIMAL(18,2)", "DECIMAL(9,6)", "DATE", "BIGINT", "VARCHAR"
AMOUNT_COLUMNS = [
    "purchases", "refunds", "fees", "adjustments", "carried_in", "proceeds",
    "deposit_held", "deposit_released", "deposit_forfeited", "deactivation_fee",
    "payout", "carried_out",
]
SCHEMAS = {
    "settlement": [("settlement_date", DATE), ("merchant_id", TEXT), ("txn_count", COUNT)]
    + [(name, AMOUNT) for name in AMOUNT_COLUMNS],
    "journal": [
        ("settlement_date", DATE), ("merchant_id", TEXT), ("seq", COUNT), ("kind", TEXT),
        ("amount", AMOUNT), ("category", TEXT), ("card", TEXT), ("rate", RATE),
        ("capped", TEXT), ("count", COUNT), ("source", TEXT), ("detail", TEXT),
    ],
    "fees": [
        ("txn_id", TEXT), ("merchant_id", TEXT), ("terminal_id", TEXT), ("type", TEXT),
        ("business_date", DATE), ("settlement_date", DATE), ("amount", AMOUNT),
        ("category", TEXT), ("rate", RATE), ("fee", AMOUNT), ("status", TEXT),
    ],
    "rejects": [("file", TEXT), ("line", COUNT), ("txn_id", TEXT), ("reason", TEXT), ("detail", TEXT)],
    "adjustments-booked": [
        ("adj_id", TEXT), ("merchant_id", TEXT), ("settlement_date", DATE),
        ("amount", AMOUNT), ("reason", TEXT),
    ],
}

# The identities each tool checks against control.json: (file kind, SQL-ish
# description, a function of a {column: sum} view). Sums are exact Decimals.
ADJUSTMENTS = """adj_id,merchant_id,settlement_date,amount,reason
A1,{m1},2026-11-03,12.34,"Goodwill credit, ticket #88"
A2,{m2},2026-11-04,-5.00,"Wrong ""express"" fee, reversed"
A3,{m1},2026-11-05,0.01,Rounding
"""


def kind_of(name):
    """The file kind of an output name: settlement-2026-11-02.csv → settlement."""
    stem = name.rsplit(".", 1)[0]
    for kind in SCHEMAS:
        if stem == kind or stem.startswith(kind + "-"):
            return kind
    return None


def outputs(folder, extension):
    return sorted(p for p in folder.iterdir() if p.suffix == extension and kind_of(p.name))


def settle(binary, args):
    result = subprocess.run([binary, *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"settle {' '.join(args)} failed ({result.returncode}): {result.stderr}")


def make_runs(binary, work, rows):
    """Generates data and settles it as CSV and as Parquet."""
    if work.exists():
        shutil.rmtree(work)
    data = work / "data"
    settle(binary, ["gen", "--merchants", "5000", "--rows", str(rows), "--days", "7",
                    "--seed", "15", "--out", str(data)])
    merchants = (data / "merchants.csv").read_text().splitlines()[1:3]
    m1, m2 = (line.split(",")[0] for line in merchants)
    (data / "adjustments.csv").write_text(ADJUSTMENTS.format(m1=m1, m2=m2))
    runs = {}
    for fmt in ["csv", "parquet"]:
        out = work / fmt
        settle(binary, ["run", "--config", str(data / "settle.toml"),
                        "--merchants", str(data / "merchants.csv"),
                        "--transactions", str(data / "transactions.csv"),
                        "--adjustments", str(data / "adjustments.csv"),
                        "--detail", "--format", fmt, "--out", str(out)])
        settle(binary, ["verify", str(out)])
        runs[fmt] = out
    return runs


class Results:
    """Collects each check's outcome; any failure fails the script."""

    def __init__(self):
        self.failures = []
        self.lines = []

    def expect(self, what, got, want):
        if got != want:
            self.failures.append(f"{what}: got {got!r}, want {want!r}")
            return False
        return True

    def row(self, tool, fmt, files, rows, types, totals, same):
        self.lines.append((tool, fmt, files, rows, types, totals, same))


def control_expectations(control):
    """What the sums must be: {(kind, key): Decimal or int}."""
    t = {k: Decimal(v) for k, v in control["totals"].items()}
    txns = control["inputs"]["transactions"]
    adjustments = control["inputs"]["adjustments"] or {"rows_accepted": 0, "rows_rejected": 0}
    return {
        **{("settlement", c): t[k] for c, k in [
            ("purchases", "purchases"), ("refunds", "refunds"), ("fees", "fees"),
            ("adjustments", "adjustments"), ("payout", "payouts"),
            ("deposit_held", "deposit_held"), ("deposit_released", "deposit_released"),
            ("deposit_forfeited", "deposit_forfeited"),
            ("deactivation_fee", "deactivation_fees")]},
        # The journal's postings by kind (docs/JOURNAL.md), signed as the
        # merchant's account sees them.
        ("journal", "purchase"): t["purchases"],
        ("journal", "refund"): -t["refunds"],
        ("journal", "fee+fee_returned"): -t["fees"],
        ("journal", "adjustment"): t["adjustments"],
        ("journal", "payout"): -t["payouts"],
        ("fees", "fee"): t["fees"],
        ("fees", "rows"): sum(f["rows_accepted"] for f in txns),
        ("rejects", "rows"): sum(f["rows_rejected"] for f in txns) + adjustments["rows_rejected"],
        ("adjustments-booked", "rows"): adjustments["rows_accepted"],
        ("adjustments-booked", "amount"): t["adjustments"],
    }


def journal_kind_sums(pairs):
    """{kind: sum} from (kind, sum) pairs, with fee and fee_returned joined."""
    sums = {k: v for k, v in pairs}
    sums["fee+fee_returned"] = sums.get("fee", Decimal(0)) + sums.get("fee_returned", Decimal(0))
    return sums


def check_totals(results, tool, fmt, want, sums):
    """`sums` holds the same keys as `want`, from one tool and format."""
    ok = True
    for key, value in want.items():
        ok &= results.expect(f"{tool} {fmt} {key[0]} {key[1]}", sums.get(key), value)
    return ok


# ---------------------------------------------------------------- DuckDB

def duckdb_source(path, kind):
    """How an analyst loads a file exactly: Parquet as it is; CSV with every
    column's type given (no sniffing), so amounts are DECIMAL(18,2)."""
    if path.suffix == ".parquet":
        return f"read_parquet('{path}')"
    columns = ", ".join(f"'{name}': '{sql}'" for name, sql in SCHEMAS[kind])
    return (f"read_csv('{path}', header = true, auto_detect = false, delim = ',', "
            f"quote = '\"', escape = '\"', columns = {{{columns}}})")


def duckdb_normalised(path, kind):
    """The file with row numbers and an empty text as '' (a CSV reader
    cannot tell an empty text from a null)."""
    columns = ", ".join(f"coalesce(\"{n}\", '')" if t == TEXT else f'"{n}"' for n, t in SCHEMAS[kind])
    return f"SELECT row_number() OVER () AS n, {columns} FROM {duckdb_source(path, kind)}"


def check_duckdb(results, runs, want):
    con = duckdb.connect()
    for fmt, folder in runs.items():
        files = outputs(folder, "." + fmt)
        rows, types_ok, sums = 0, True, {}
        for path in files:
            kind = kind_of(path.name)
            source = duckdb_source(path, kind)
            described = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            types_ok &= results.expect(f"duckdb {path.name} types", described, SCHEMAS[kind])
            n = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
            rows += n
            add = lambda key, value: sums.__setitem__((kind, key), sums.get((kind, key), 0) + value)
            add("rows", n)
            if kind in ("settlement", "fees", "adjustments-booked"):
                columns = [c for c, t in SCHEMAS[kind] if t == AMOUNT]
                values = con.execute(f"SELECT {', '.join(f'sum({c})' for c in columns)} FROM {source}").fetchone()
                for c, v in zip(columns, values):
                    add(c, v if v is not None else Decimal("0.00"))
            if kind == "journal":
                pairs = con.execute(f"SELECT kind, sum(amount) FROM {source} GROUP BY kind").fetchall()
                for key, value in journal_kind_sums(pairs).items():
                    add(key, value)
        totals_ok = check_totals(results, "duckdb", fmt, want, {k: v for k, v in sums.items() if k in want})
        same = "-"
        if fmt == "parquet":
            same_ok = True
            for path in files:
                twin = runs["csv"] / (path.stem + ".csv")
                kind = kind_of(path.name)
                a, b = duckdb_normalised(path, kind), duckdb_normalised(twin, kind)
                differ = con.execute(f"SELECT count(*) FROM (({a}) EXCEPT ALL ({b})) UNION ALL "
                                 f"SELECT count(*) FROM (({b}) EXCEPT ALL ({a}))").fetchall()
                same_ok &= results.expect(f"duckdb {path.name} vs {twin.name} differing rows",
                                          [r[0] for r in differ], [0, 0])
            same = "ok" if same_ok else "FAIL"
        results.row("duckdb", fmt, len(files), rows, ok(types_ok), ok(totals_ok), same)


# ---------------------------------------------------------------- Polars

POLARS_TYPES = {AMOUNT: pl.Decimal(18, 2), RATE: pl.Decimal(9, 6), DATE: pl.Date, COUNT: pl.Int64, TEXT: pl.String}


def polars_read(path, kind):
    """Parquet as it is; CSV with an explicit schema (pl.Decimal for money)."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    schema = {name: POLARS_TYPES[t] for name, t in SCHEMAS[kind]}
    return pl.read_csv(path, schema=schema)


def check_polars(results, runs, want):
    frames = {}
    for fmt, folder in runs.items():
        files = outputs(folder, "." + fmt)
        rows, types_ok, sums = 0, True, {}
        for path in files:
            kind = kind_of(path.name)
            frame = polars_read(path, kind)
            frames[(fmt, path.stem)] = (kind, frame)
            types_ok &= results.expect(f"polars {path.name} types", list(frame.schema.items()),
                                       [(n, POLARS_TYPES[t]) for n, t in SCHEMAS[kind]])
            rows += frame.height
            add = lambda key, value: sums.__setitem__((kind, key), sums.get((kind, key), 0) + value)
            add("rows", frame.height)
            for c, t in SCHEMAS[kind]:
                if t == AMOUNT and kind != "journal":
                    add(c, frame[c].sum())
            if kind == "journal":
                grouped = frame.group_by("kind").agg(pl.col("amount").sum())
                for key, value in journal_kind_sums(grouped.iter_rows()).items():
                    add(key, value)
        totals_ok = check_totals(results, "polars", fmt, want, {k: v for k, v in sums.items() if k in want})
        same = "-"
        if fmt == "parquet":
            same_ok = True
            for path in files:
                kind, parquet_frame = frames[("parquet", path.stem)]
                _, csv_frame = frames[("csv", path.stem)]
                texts = [pl.col(n).fill_null("") for n, t in SCHEMAS[kind] if t == TEXT]
                equal = csv_frame.with_columns(texts).equals(parquet_frame.with_columns(texts))
                same_ok &= results.expect(f"polars {path.name} equals its CSV twin", equal, True)
            same = "ok" if same_ok else "FAIL"
        results.row("polars", fmt, len(files), rows, ok(types_ok), ok(totals_ok), same)


# ---------------------------------------------------------------- pandas

def exact(text):
    """A CSV decimal field as a Decimal; an empty field (a journal
    posting without a rate) as None."""
    return Decimal(text) if text != "" else None


def pandas_read(path, kind):
    """Parquet through pyarrow with Arrow types (decimal128 stays decimal);
    CSV as text, amounts and rates through Python's Decimal: never a float."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path, engine="pyarrow", dtype_backend="pyarrow")
    converters = {n: exact for n, t in SCHEMAS[kind] if t in (AMOUNT, RATE)}
    texts = {n: str for n, t in SCHEMAS[kind] if n not in converters}
    frame = pd.read_csv(path, dtype=texts, keep_default_na=False, converters=converters)
    for n, t in SCHEMAS[kind]:
        if t == COUNT:
            # object, not int64: a count column with an empty field would
            # otherwise become float64.
            values = [int(v) if v != "" else None for v in frame[n]]
            frame[n] = pd.Series(values, dtype=object, index=frame.index)
    return frame


def pandas_value(value, sql):
    """One value in a form both readings share: Decimal, ISO date text, int,
    or text ('' for null text; None for a null number)."""
    if value is None or value is pd.NA or (isinstance(value, float)):
        if isinstance(value, float):
            raise TypeError(f"a float {value!r} reached a comparison")
        return "" if sql == TEXT else None
    if sql == DATE:
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if sql in (AMOUNT, RATE):
        return value if isinstance(value, Decimal) else Decimal(str(value)) if value != "" else None
    return value


def check_pandas(results, runs, want):
    frames = {}
    parquet_types = {AMOUNT: pa.decimal128(18, 2), RATE: pa.decimal128(9, 6), DATE: pa.date32(),
                     COUNT: pa.int64()}
    for fmt, folder in runs.items():
        files = outputs(folder, "." + fmt)
        rows, types_ok, sums = 0, True, {}
        for path in files:
            kind = kind_of(path.name)
            frame = pandas_read(path, kind)
            frames[(fmt, path.stem)] = (kind, frame)
            for name, sql in SCHEMAS[kind]:
                if fmt == "parquet":
                    arrow = frame[name].dtype.pyarrow_dtype
                    good = arrow == parquet_types[sql] if sql != TEXT else pa.types.is_string(arrow) or pa.types.is_large_string(arrow)
                else:
                    good = sql not in (AMOUNT, RATE) or all(
                        isinstance(v, Decimal) or (v is None and sql == RATE) for v in frame[name])
                types_ok &= results.expect(f"pandas {path.name} {name} type", good, True)
            rows += len(frame)
            add = lambda key, value: sums.__setitem__((kind, key), sums.get((kind, key), 0) + value)
            add("rows", len(frame))
            for c, t in SCHEMAS[kind]:
                if t == AMOUNT and kind != "journal":
                    # Python's Decimal sum of the exact values, never a float sum.
                    add(c, sum((pandas_value(v, t) for v in frame[c].tolist()), Decimal("0.00")))
            if kind == "journal":
                pairs = {}
                for k, v in zip(frame["kind"].tolist(), frame["amount"].tolist()):
                    pairs[k] = pairs.get(k, Decimal("0.00")) + pandas_value(v, AMOUNT)
                for key, value in journal_kind_sums(pairs.items()).items():
                    add(key, value)
        totals_ok = check_totals(results, "pandas", fmt, want, {k: v for k, v in sums.items() if k in want})
        same = "-"
        if fmt == "parquet":
            same_ok = True
            for path in files:
                kind, parquet_frame = frames[("parquet", path.stem)]
                _, csv_frame = frames[("csv", path.stem)]
                def records(frame):
                    columns = [[pandas_value(v, t) for v in frame[n].tolist()] for n, t in SCHEMAS[kind]]
                    return list(zip(*columns))
                same_ok &= results.expect(f"pandas {path.name} equals its CSV twin",
                                          records(parquet_frame) == records(csv_frame), True)
            same = "ok" if same_ok else "FAIL"
        results.row("pandas", fmt, len(files), rows, ok(types_ok), ok(totals_ok), same)


# ---------------------------------------------------------------- settle diff

DIFF_TOTALS = {
    # settle diff's total: the settlement column that sums to it.
    "purchases": "purchases", "refunds": "refunds", "fees": "fees",
    "adjustments": "adjustments", "payouts": "payout", "deposit_held": "deposit_held",
    "deposit_released": "deposit_released", "deposit_forfeited": "deposit_forfeited",
    "deactivation_fees": "deactivation_fee",
}


def make_what_if(binary, work):
    """The CSV run's inputs settled again with dining's credit rate lowered."""
    data = work / "data"
    config = (data / "settle.toml").read_text()
    at = config.index('name = "dining_entertainment"')
    rate = config.index('credit_rate = "0.0049"', at)
    what_if = data / "what-if.toml"
    what_if.write_text(config[:rate] + 'credit_rate = "0.0045"' + config[rate + len('credit_rate = "0.0049"'):])
    out = work / "what-if"
    settle(binary, ["run", "--config", str(what_if),
                    "--merchants", str(data / "merchants.csv"),
                    "--transactions", str(data / "transactions.csv"),
                    "--adjustments", str(data / "adjustments.csv"),
                    "--detail", "--no-state", "--out", str(out)])
    return out


def duckdb_union(folder, prefix, kind):
    """Every `prefix`-*.csv file of a run as one relation, loaded exactly."""
    return " UNION ALL ".join(f"SELECT * FROM {duckdb_source(path, kind)}"
                              for path in outputs(folder, ".csv") if path.name.startswith(prefix + "-"))


def check_diff(results, binary, work, base):
    """`settle diff --json` against DuckDB's own sums over the two runs."""
    what_if = make_what_if(binary, work)
    answer = subprocess.run([binary, "diff", str(base), str(what_if), "--json"],
                            capture_output=True, text=True)
    if answer.returncode != 0:
        results.failures.append(f"settle diff failed ({answer.returncode}): {answer.stderr}")
        results.row("diff", "csv", "-", "-", "-", "FAIL", "-")
        return
    diff = json.loads(answer.stdout)
    con = duckdb.connect()
    settlements = {side: duckdb_union(folder, "settlement", "settlement")
                   for side, folder in (("a", base), ("b", what_if))}
    journals = {side: duckdb_union(folder, "journal", "journal")
                for side, folder in (("a", base), ("b", what_if))}
    checked, good = 0, True

    def same(what, got, want):
        nonlocal checked, good
        checked += 1
        good &= results.expect(f"settle diff {what}", got, want)

    # Totals: B - A of each settlement column, summed by DuckDB.
    for total, column in DIFF_TOTALS.items():
        a, b = (con.execute(f"SELECT coalesce(sum({column}), 0) FROM ({settlements[s]})").fetchone()[0]
                for s in "ab")
        same(f"totals.{total}.delta", Decimal(diff["totals"][total]["delta"]), b - a)

    # By category and card: fees charged less fees returned, from the journals.
    fees = {}
    for side in "ab":
        for category, card, net in con.execute(
                f"SELECT category, card, -sum(amount) FROM ({journals[side]}) "
                f"WHERE kind IN ('fee', 'fee_returned') GROUP BY category, card").fetchall():
            fees.setdefault((category, card), {"a": Decimal("0.00"), "b": Decimal("0.00")})[side] = net
    listed = {(row["category"], row["card"]): row for row in diff["by_category"]}
    for key, sides in sorted(fees.items()):
        row = listed.get(key)
        if row is None:
            same(f"by_category {key} listed", None, "a row")
            continue
        for side in "ab":
            same(f"by_category {key} fees.{side}", Decimal(row["fees"][side]), sides[side])

    # By settlement date: fees and payouts.
    by_date = {row["settlement_date"]: row for row in diff["by_date"]}
    for column, key in (("fees", "fees"), ("payout", "payout"), ("deposit_held", "deposit_held")):
        sums = {}
        for side in "ab":
            for day, total in con.execute(f"SELECT settlement_date, sum({column}) FROM ({settlements[side]}) "
                                          "GROUP BY settlement_date").fetchall():
                sums.setdefault(day.isoformat(), {})[side] = total
        for day, sides in sorted(sums.items()):
            row = by_date.get(day)
            same(f"by_date {day} {key} delta",
                 Decimal(row[key]["delta"]) if row and key in row else None, sides["b"] - sides["a"])
    results.row("diff", "csv", 2, checked, "-", ok(good), "-")


CHECKS = [check_duckdb, check_polars, check_pandas]


def ok(flag):
    return "ok" if flag else "FAIL"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settle")
    parser.add_argument("work", type=Path)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    # A stray float would lose fen silently; make Decimal refuse inexact work.
    decimal.getcontext().traps[decimal.Inexact] = True
    decimal.getcontext().prec = 38

    runs = make_runs(args.settle, args.work, args.rows)
    control = json.loads((runs["csv"] / "control.json").read_text())
    want = control_expectations(control)
    results = Results()
    for check in CHECKS:
        try:
            check(results, runs, want)
        except Exception as error:  # a tool that cannot load a file is a failure too
            results.failures.append(f"{check.__name__}: {type(error).__name__}: {error}")
    try:
        check_diff(results, args.settle, args.work, runs["csv"])
    except Exception as error:
        results.failures.append(f"check_diff: {type(error).__name__}: {error}")

    print(f"versions: duckdb {duckdb.__version__}, polars {pl.__version__}, "
          f"pandas {pd.__version__}, pyarrow {pa.__version__}; {args.rows} rows generated")
    print(f"control.json: purchases {control['totals']['purchases']}, fees {control['totals']['fees']}, "
          f"payouts {control['totals']['payouts']}")
    header = ("tool", "format", "files", "rows", "types", "totals", "csv=parquet")
    widths = [8, 8, 6, 10, 6, 7, 11]
    for line in [header, *results.lines]:
        print("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip())
    if results.failures:
        print(f"\n{len(results.failures)} mismatch(es):")
        for failure in results.failures:
            print(f"  {failure}")
        sys.exit(1)
    print("all tools agree with control.json to the fen, CSV with Parquet row for row, "
          "and settle diff with DuckDB")


if __name__ == "__main__":
    main()
