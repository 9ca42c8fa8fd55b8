#!/usr/bin/env python3
"""What an analyst writes today, for scripts/bench.sh to compare with `settle run`.

Per (merchant_id, business date) sum of purchase fees, where

    fee = round_half_up(amount * rate[card], 0.01), then min(fee, cap[card])

with the category found from the purchase's MCC (its own `mcc` field when
non-empty, else the merchant's registered MCC in merchants.csv), over rows
with type = 'purchase' and a valid amount. Money is never a float: DuckDB
uses DECIMAL(18,2) amounts and DECIMAL(18,6) rates, Polars integer fen and
integer parts-per-million.

This is the *bare* aggregation: none of settle's other rules (duplicates,
merchant activity dates, voids, refunds, over_limit, timestamp checks) are
applied, so its totals differ a little from settle's. The untimed check
(`--only-ids`) restricts it to the purchases settle charged, and then the
totals must be equal to the fen.

Subcommands (each prints one `RESULT {json}` line last):

    rates         settle.toml -> flat mcc,category,debit_rate,credit_rate,
                  debit_cap,credit_cap CSV (all 10000 codes, default filled in)
    duckdb        the aggregation in DuckDB
    polars        the aggregation in Polars
    settle-total  settle's figure: sum of `fee` over --detail rows whose
                  status is charged or capped
    table         render bench.sh's TSV of measurements as markdown
"""

import argparse
import json
import os
import sys
import time
from decimal import Decimal

STATUSES = ("charged", "capped")


def result(obj):
    print("RESULT " + json.dumps(obj, sort_keys=True), flush=True)


def die(msg):
    print(f"bench_compare: {msg}", file=sys.stderr)
    sys.exit(2)


# --------------------------------------------------------------------------- rates


def cmd_rates(args):
    import tomllib

    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    rounding = cfg.get("rounding", "half_up")
    if rounding != "half_up":
        die(f"{args.config}: rounding = {rounding!r}; this benchmark implements half_up only")

    def rate(cat, key):
        s = cat[key]
        d = Decimal(s)
        ppm = d * 1_000_000
        if ppm != ppm.to_integral_value() or d < 0:
            die(f"category {cat['name']}: {key} = {s!r} is not a rate with at most 6 decimals")
        return f"{d:.6f}", int(ppm)

    def cap(cat, key):
        s = cat.get(key)
        if s is None:
            return "", ""
        d = Decimal(s)
        fen = d * 100
        if fen != fen.to_integral_value() or d < 0:
            die(f"category {cat['name']}: {key} = {s!r} is not an amount")
        return f"{d:.2f}", str(int(fen))

    cats = cfg.get("category", [])
    defaults = [c for c in cats if c.get("default")]
    if len(defaults) != 1:
        die(f"{args.config}: need exactly one default category, found {len(defaults)}")
    owner = {}
    for cat in cats:
        for spec in cat.get("mcc", []):
            lo, _, hi = spec.partition("-")
            hi = hi or lo
            for code in range(int(lo), int(hi) + 1):
                key = f"{code:04d}"
                if key in owner:
                    die(f"mcc {key} is in {owner[key]['name']} and {cat['name']}")
                owner[key] = cat
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(
            "mcc,category,debit_rate,credit_rate,debit_cap,credit_cap,"
            "debit_ppm,credit_ppm,debit_cap_fen,credit_cap_fen\n"
        )
        for code in range(10000):
            key = f"{code:04d}"
            cat = owner.get(key, defaults[0])
            dr, dppm = rate(cat, "debit_rate")
            cr, cppm = rate(cat, "credit_rate")
            dc, dcf = cap(cat, "debit_cap")
            cc, ccf = cap(cat, "credit_cap")
            out.write(f"{key},{cat['name']},{dr},{cr},{dc},{cc},{dppm},{cppm},{dcf},{ccf}\n")
    result({"tool": "rates", "codes": 10000, "listed": len(owner), "out": args.out})


# --------------------------------------------------------------------------- helpers


def detail_glob(detail_dir):
    return os.path.join(detail_dir, "fees-*.csv")


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


# --------------------------------------------------------------------------- duckdb


def cmd_duckdb(args):
    t0 = time.perf_counter()
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {int(args.threads)}")
    con.execute("SET preserve_insertion_order = false")
    files = "[" + ", ".join(sql_str(f) for f in args.transactions) + "]"
    # Every column as text; rows whose field count differs from the header's
    # are dropped (ignore_errors), like settle's malformed_row.
    con.execute(
        f"""
        CREATE TEMP VIEW txn AS
        SELECT * FROM read_csv({files}, header = true, delim = ',', quote = '"',
                               escape = '"', all_varchar = true, ignore_errors = true,
                               union_by_name = true)
        """
    )
    con.execute(
        f"""
        CREATE TEMP VIEW merchant AS
        SELECT merchant_id, mcc FROM read_csv({sql_str(args.merchants)}, header = true,
                                              all_varchar = true)
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE rate AS
        SELECT mcc, category,
               CAST(debit_rate AS DECIMAL(18,6))  AS debit_rate,
               CAST(credit_rate AS DECIMAL(18,6)) AS credit_rate,
               CAST(NULLIF(debit_cap, '') AS DECIMAL(18,2))  AS debit_cap,
               CAST(NULLIF(credit_cap, '') AS DECIMAL(18,2)) AS credit_cap
        FROM read_csv({sql_str(args.rates)}, header = true, all_varchar = true)
        """
    )
    restrict = ""
    if args.only_ids:
        con.execute(
            f"""
            CREATE TEMP TABLE settle_detail AS
            SELECT txn_id, merchant_id, business_date, CAST(fee AS DECIMAL(18,2)) AS fee
            FROM read_csv({sql_str(detail_glob(args.only_ids))}, header = true,
                          all_varchar = true)
            WHERE status IN {STATUSES!r}
            """
        )
        restrict = "AND t.txn_id IN (SELECT txn_id FROM settle_detail)"
    con.execute(
        f"""
        CREATE TEMP TABLE fee_rows AS
        WITH p AS (
            SELECT t.txn_id, t.merchant_id, left(t.ts, 10) AS business_date, t.card,
                   CAST(t.amount AS DECIMAL(18,2)) AS amount,
                   coalesce(NULLIF(t.mcc, ''), m.mcc) AS eff_mcc
            FROM txn t JOIN merchant m ON m.merchant_id = t.merchant_id
            WHERE t.type = 'purchase'
              AND regexp_full_match(t.amount, '0*[0-9]{{1,12}}(\\.[0-9]{{1,2}})?')
              {restrict}
        ), f AS (
            SELECT p.txn_id, p.merchant_id, p.business_date,
                   round(p.amount * CASE p.card WHEN 'debit' THEN r.debit_rate
                                                WHEN 'credit' THEN r.credit_rate END, 2) AS fee,
                   CASE p.card WHEN 'debit' THEN r.debit_cap
                               WHEN 'credit' THEN r.credit_cap END AS cap
            FROM p JOIN rate r ON r.mcc = p.eff_mcc
            WHERE p.card IN ('debit', 'credit')
        )
        SELECT txn_id, merchant_id, business_date,
               CASE WHEN cap IS NOT NULL AND fee > cap THEN cap ELSE fee END AS fee
        FROM f
        """
        if args.only_ids
        else f"""
        CREATE TEMP TABLE result AS
        WITH p AS (
            SELECT t.merchant_id, left(t.ts, 10) AS business_date, t.card,
                   CAST(t.amount AS DECIMAL(18,2)) AS amount,
                   coalesce(NULLIF(t.mcc, ''), m.mcc) AS eff_mcc
            FROM txn t JOIN merchant m ON m.merchant_id = t.merchant_id
            WHERE t.type = 'purchase'
              AND regexp_full_match(t.amount, '0*[0-9]{{1,12}}(\\.[0-9]{{1,2}})?')
        ), f AS (
            SELECT p.merchant_id, p.business_date,
                   round(p.amount * CASE p.card WHEN 'debit' THEN r.debit_rate
                                                WHEN 'credit' THEN r.credit_rate END, 2) AS fee,
                   CASE p.card WHEN 'debit' THEN r.debit_cap
                               WHEN 'credit' THEN r.credit_cap END AS cap
            FROM p JOIN rate r ON r.mcc = p.eff_mcc
            WHERE p.card IN ('debit', 'credit')
        )
        SELECT merchant_id, business_date,
               sum(CASE WHEN cap IS NOT NULL AND fee > cap THEN cap ELSE fee END) AS fees,
               count(*) AS purchases
        FROM f
        GROUP BY merchant_id, business_date
        """
    )
    out = {"tool": "duckdb", "threads": int(args.threads), "version": duckdb.__version__}
    if args.only_ids:
        # The untimed check: the same fees, only for the purchases settle
        # charged; compared per row, per (merchant, business date) and in all.
        total, rows = con.execute("SELECT sum(fee), count(*) FROM fee_rows").fetchone()
        s_total, s_rows = con.execute("SELECT sum(fee), count(*) FROM settle_detail").fetchone()
        row_diff = con.execute(
            """
            SELECT count(*) FROM settle_detail s FULL JOIN fee_rows f USING (txn_id)
            WHERE s.fee IS DISTINCT FROM f.fee
            """
        ).fetchone()[0]
        group_diff = con.execute(
            """
            WITH a AS (SELECT merchant_id, business_date, sum(fee) AS fees
                       FROM fee_rows GROUP BY ALL),
                 b AS (SELECT merchant_id, business_date, sum(fee) AS fees
                       FROM settle_detail GROUP BY ALL)
            SELECT count(*) FROM a FULL JOIN b USING (merchant_id, business_date)
            WHERE a.fees IS DISTINCT FROM b.fees
            """
        ).fetchone()[0]
        examples = con.execute(
            """
            SELECT s.txn_id, f.txn_id, CAST(s.fee AS VARCHAR), CAST(f.fee AS VARCHAR)
            FROM settle_detail s FULL JOIN fee_rows f USING (txn_id)
            WHERE s.fee IS DISTINCT FROM f.fee LIMIT 5
            """
        ).fetchall()
        out.update(
            fee_total=str(total if total is not None else "0.00"),
            purchases=rows,
            settle_fee_total=str(s_total if s_total is not None else "0.00"),
            settle_rows=s_rows,
            row_mismatches=row_diff,
            group_mismatches=group_diff,
            examples=[list(map(str, e)) for e in examples],
        )
    else:
        if args.out:
            con.execute(
                f"COPY (SELECT merchant_id, business_date, fees, purchases FROM result) "
                f"TO {sql_str(args.out)} (HEADER, DELIMITER ',')"
            )
        total, rows, groups = con.execute(
            "SELECT sum(fees), sum(purchases), count(*) FROM result"
        ).fetchone()
        out.update(fee_total=str(total), purchases=int(rows), groups=groups)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    print(f"duckdb: fee total {out['fee_total']} over {out['purchases']} purchases "
          f"in {out['seconds']} s", file=sys.stderr)
    result(out)


# --------------------------------------------------------------------------- polars


def cmd_polars(args):
    t0 = time.perf_counter()
    # Must be set before polars is imported.
    os.environ["POLARS_MAX_THREADS"] = str(int(args.threads))
    import polars as pl

    # All columns as text, by the header's names, plus one more: a row with
    # more fields than the header fills it, and is dropped (settle's
    # malformed_row; DuckDB's ignore_errors does the same).
    def scan(path):
        with open(path, encoding="utf-8", newline="") as f:
            header = f.readline().rstrip("\r\n").split(",")
        schema = {name: pl.String for name in header}
        schema["__extra__"] = pl.String
        return pl.scan_csv(
            path, has_header=False, skip_rows=1, schema=schema, missing_columns="insert",
            encoding="utf8-lossy",
        ).filter(pl.col("__extra__").is_null())

    txn = pl.concat([scan(p) for p in args.transactions], how="diagonal")
    if "mcc" not in txn.collect_schema():
        txn = txn.with_columns(mcc=pl.lit(None, pl.String))
    merchant = pl.scan_csv(args.merchants, infer_schema=False).select(
        "merchant_id", pl.col("mcc").alias("merchant_mcc")
    )
    rate = pl.scan_csv(
        args.rates,
        schema_overrides={
            "mcc": pl.String,
            "debit_ppm": pl.Int64,
            "credit_ppm": pl.Int64,
            "debit_cap_fen": pl.Int64,
            "credit_cap_fen": pl.Int64,
        },
    ).select("mcc", "debit_ppm", "credit_ppm", "debit_cap_fen", "credit_cap_fen")

    amount = pl.col("amount")
    p = txn.filter(
        (pl.col("type") == "purchase")
        & amount.str.contains(r"^0*[0-9]{1,12}(\.[0-9]{1,2})?$")
        & pl.col("card").is_in(["debit", "credit"])
    )
    if args.only_ids:
        ids = (
            pl.scan_csv(detail_glob(args.only_ids), infer_schema=False)
            .filter(pl.col("status").is_in(list(STATUSES)))
            .select("txn_id")
        )
        p = p.join(ids, on="txn_id", how="semi")
    debit = pl.col("card") == "debit"
    fee_rows = (
        p.join(merchant, on="merchant_id", how="inner")
        .with_columns(
            eff_mcc=pl.coalesce(
                pl.when(pl.col("mcc") != "").then(pl.col("mcc")), pl.col("merchant_mcc")
            ),
            fen=amount.str.extract(r"^([0-9]+)", 1).cast(pl.Int64) * 100
            + amount.str.extract(r"\.([0-9]{1,2})$", 1)
            .str.pad_end(2, "0")
            .fill_null("00")
            .cast(pl.Int64),
            business_date=pl.col("ts").str.slice(0, 10),
        )
        .join(rate, left_on="eff_mcc", right_on="mcc", how="inner")
        .with_columns(
            ppm=pl.when(debit).then("debit_ppm").otherwise("credit_ppm"),
            cap=pl.when(debit).then("debit_cap_fen").otherwise("credit_cap_fen"),
        )
        # round half up to the fen, exactly, in integers
        .with_columns(fee=(pl.col("fen") * pl.col("ppm") + 500_000) // 1_000_000)
        .with_columns(
            fee=pl.when(pl.col("cap").is_not_null() & (pl.col("fee") > pl.col("cap")))
            .then(pl.col("cap"))
            .otherwise(pl.col("fee"))
        )
    )
    res = (
        fee_rows.group_by("merchant_id", "business_date")
        .agg(fee_fen=pl.col("fee").sum(), purchases=pl.len())
        .collect()
    )
    if args.out:
        res.with_columns(
            fees=pl.format(
                "{}.{}",
                pl.col("fee_fen") // 100,
                (pl.col("fee_fen") % 100).cast(pl.String).str.pad_start(2, "0"),
            )
        ).select("merchant_id", "business_date", "fees", "purchases").write_csv(args.out)
    fen = int(res["fee_fen"].sum())
    out = {
        "tool": "polars",
        "threads": pl.thread_pool_size(),
        "version": pl.__version__,
        "fee_total": f"{fen // 100}.{fen % 100:02d}",
        "purchases": int(res["purchases"].sum()),
        "groups": res.height,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    print(f"polars: fee total {out['fee_total']} over {out['purchases']} purchases "
          f"in {out['seconds']} s", file=sys.stderr)
    result(out)


# --------------------------------------------------------------------------- settle


def cmd_settle_total(args):
    import duckdb

    total, rows = duckdb.connect().execute(
        f"""
        SELECT sum(CAST(fee AS DECIMAL(18,2))), count(*)
        FROM read_csv({sql_str(detail_glob(args.detail))}, header = true, all_varchar = true)
        WHERE status IN {STATUSES!r}
        """
    ).fetchone()
    result({"tool": "settle", "fee_total": str(total), "purchases": rows})


# --------------------------------------------------------------------------- table


def cmd_table(args):
    """TSV columns: size, tool, threads, wall_s (median), rss_kb, bytes, cpu_s (the median
    run's user + system time), all walls."""
    rows = []
    with open(args.tsv, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                size, tool, threads, wall, rss, nbytes, cpu, *walls = line.rstrip("\n").split("\t")
                walls = walls[0] if walls else wall
                rows.append(
                    (int(size), tool, int(threads), float(wall), int(rss), int(nbytes), float(cpu), walls)
                )
    duck = {(r[0], r[2]): r[3] for r in rows if r[1] == "duckdb"}
    repeated = any("," in r[7] for r in rows)
    lines = []
    for size in sorted({r[0] for r in rows}):
        lines.append(f"### {size:,} rows\n")
        head = "| tool | threads | wall s | CPU s | rows/s | MB/s | peak RSS MB | vs DuckDB |"
        rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
        if repeated:
            head += " runs, wall s |"
            rule += "---|"
        lines += [head, rule]
        for s, tool, threads, wall, rss, nbytes, cpu, walls in rows:
            if s != size:
                continue
            w = max(wall, 0.01)
            d = duck.get((s, threads))
            ratio = f"{d / w:.2f}×" if d else "–"
            line = (
                f"| {tool} | {threads} | {wall:.2f} | {cpu:.2f} | {s / w:,.0f} | {nbytes / 1e6 / w:,.1f} "
                f"| {rss / 1024:,.0f} | {ratio} |"
            )
            if repeated:
                line += f" {walls.replace(',', ', ')} |"
            lines.append(line)
        lines.append("")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("rates")
    r.add_argument("--config", required=True)
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_rates)

    for name, func in (("duckdb", cmd_duckdb), ("polars", cmd_polars)):
        q = sub.add_parser(name)
        q.add_argument("--rates", required=True, help="the CSV written by `rates`")
        q.add_argument("--merchants", required=True)
        q.add_argument("--transactions", required=True, nargs="+")
        q.add_argument("--threads", type=int, default=os.cpu_count())
        q.add_argument("--out", help="write the per (merchant, date) result as CSV")
        q.add_argument(
            "--only-ids",
            metavar="DETAIL_DIR",
            help="untimed check: only purchases settle's fees-*.csv shows charged or capped",
        )
        q.set_defaults(func=func)

    s = sub.add_parser("settle-total")
    s.add_argument("--detail", required=True, help="a settle --detail output folder")
    s.set_defaults(func=cmd_settle_total)

    t = sub.add_parser("table")
    t.add_argument("tsv")
    t.set_defaults(func=cmd_table)

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
