#!/usr/bin/env python3
"""gen_cases.py --seed N --out DIR: write one small, adversarial settle case.

DIR gets settle.toml, merchants.csv, txns1.csv (and maybe txns2.csv, given after
it), maybe adjustments.csv (pass it with --adjustments), and `args`: the extra
flags for `settle run` (`--through 2026-11-09`), possibly empty. The same seed
always writes the same bytes. Most seeds are valid runs full of rejects, deposit and deactivation
events; a few (about 1 in 12) carry a fatal error (exit 2) on purpose.
"""
import argparse
import datetime as dt
import os
import random
from decimal import Decimal

EPOCH = dt.datetime(1970, 1, 1)
NS = 10**9

# Disjoint MCC specs; a config takes some of them. Merchant MCCs are drawn so
# that some fall in none (the default category).
MCC_POOL = [["5812-5814"], ["5411", "5499", "5912"], ["8062", "8211", "8398", "9211-9399"],
            ["4111", "4112-4121"], ["7011"]]
MERCHANT_MCCS = ["5812", "5813", "5814", "5411", "5499", "8062", "9300", "4111", "4120",
                 "5999", "7011", "0742"]
RATES = ["0", "0.0038", "0.0049", "0.001234", "0.0025", "0.0045", "0.0015", "0.000001", "0.004"]
CAPS = ["0.50", "1.00", "2", "20.00", "0", "0.05"]
AMOUNTS = ["10.00", "25", "33.33", "100.00", "0.50", "12.5", "250.00", "499.99", "600.00",
           "1.00", "200", "10", "0.01", "1000.00", "45.00", "2.00", "0.02"]
BAD_AMOUNTS = ["12.345", "-5.00", "+5", "1e3", "1,000.00", "0", "0.00", ".5", "5.", "abc",
               "1000000000000", "999999999999.99", "\u0661\u0662", "5 .00", "0x10", "1_000"]
BAD_TS = ["2026-02-30 10:00:00", "2026-11-01T24:00:00", "2026-11-01T10:00:60",
          "2026-11-01t10:00:00", "2026-11-01T10:00:00z", "2026-11-01  10:00:00",
          "2026-11-01T10:00:00+24:00", "2026-11-01T10:00:00.1234567890", "2026-11-01T10:00",
          "2026-11-01T10:00:00.", "2026-11-01", "2026/11/01 10:00:00", "2026-11-01T10:00:00+0800",
          "2026-11-01T10:00:00+08:60", "2027-02-29 12:00:00", "2026-13-01 00:00:00",
          "2026-11-01T10:00:00 +08:00", "2026-11-1 10:00:00"]
BAD_TYPES = ["Purchase", "PURCHASE", "sale", "refunds", "Void", "void "]  # "void " trims to void
BAD_CARDS = ["Debit", "visa", "CREDIT", "debit card"]
BAD_MCCS = ["581", "58120", "58a2", "\uff18\uff10\uff16\uff12", "-581"]
OFFSETS = ["+08:00", "+00:00", "-05:00", "+09:30", "-11:00", "+05:45", "-00:00", "+23:59"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def chance(self, p):
        return self.r.random() < p

    # ---- time: instants are ns since the epoch, UTC
    def render_ts(self, instant_ns, tz_min):
        r = self.r
        form = r.choice(["naive", "naive", "Z", "off", "off"])
        off = {"naive": tz_min, "Z": 0}.get(form)
        suffix = "" if form == "naive" else "Z"
        if form == "off":
            s = r.choice(OFFSETS)
            sign = -1 if s[0] == "-" else 1
            off = sign * (int(s[1:3]) * 60 + int(s[4:6]))
            suffix = s
        local_ns = instant_ns + off * 60 * NS
        secs, frac = divmod(local_ns, NS)
        t = EPOCH + dt.timedelta(seconds=secs)
        text = t.strftime("%Y-%m-%d") + r.choice("T ") + t.strftime("%H:%M:%S")
        if frac:
            digits = f"{frac:09d}"
            keep = max(len(digits.rstrip("0")), r.randint(1, 9))
            text += "." + digits[:keep]
        return text + suffix

    def local_instant(self, day, tz_min):
        """A random instant on business day `day` (days since the epoch) in tz."""
        r = self.r
        if self.chance(0.2):  # close to midnight, either side
            sec = r.choice([r.randint(0, 120), r.randint(86400 - 120, 86399)])
        else:
            sec = r.randint(0, 86399)
        frac = r.choice([0, 0, 0, r.randint(0, NS - 1), r.randint(0, 9) * 10**8])
        return ((day * 86400 + sec - tz_min * 60) * NS) + frac


def day_str(day):
    return (EPOCH + dt.timedelta(days=day)).strftime("%Y-%m-%d")


def make_config(g, fatal):
    r = g.r
    lines = []
    tz = r.choice(["+08:00", "+08:00", "+00:00", "-05:00", "+05:30", "-03:30"])
    sign = -1 if tz[0] == "-" else 1
    tz_min = sign * (int(tz[1:3]) * 60 + int(tz[4:6]))
    lag = r.choice([0, 1, 1, 2])
    if tz != "+08:00" or g.chance(0.5):
        lines.append(f'timezone = "{tz}"')
    if lag != 1 or g.chance(0.5):
        lines.append(f"settlement_lag_days = {lag}")
    lines.append(f'rounding = "{r.choice(["half_up", "half_even"])}"')
    max_rate = r.choice(["0.0049", "0.0049", "0.0045", None])
    if max_rate:
        quoted = f'"{max_rate}"' if fatal != "float_rate" else max_rate
        lines.append(f"max_rate = {quoted}")
    lines.append(f'max_txn_amount = "{r.choice(["300.00", "500", "1000.5", "50000.00"])}"')
    lines.append(f'refund_fee = "{r.choice(["kept", "proportional"])}"')
    lines.append(f"refund_retention_days = {r.choice([0, 1, 2, 3, 5, 30])}")
    if fatal == "unknown_key":
        lines.append("settlment_lag_days = 1")
    lines += ["", "[deposit]",
              f'refund_volume = "{r.choice(["0", "0.00", "50.00", "150.00", "300.00", "800"])}"',
              f"refund_window_days = {r.randint(1, 6)}"]
    if g.chance(0.85):  # else the defaults: fee 199.00, return window 30 days
        lines += ["", "[deactivation]", f'fee = "{r.choice(["199.00", "0.00", "25.50", "1000"])}"',
                  f"return_window_days = {r.randint(0, 8)}"]
    ceiling = Decimal(max_rate or "0.0049")
    allowed = [x for x in RATES if Decimal(x) <= ceiling]
    specs = r.sample(MCC_POOL, r.randint(1, 4))
    if fatal == "overlap":
        specs = [s for s in specs if s != ["5812-5814"]] + [["5812-5814"], ["5813"]]
    if fatal == "bad_range":
        specs.append(["9399-9211"])
    cats = [{"mcc": s, "default": False} for s in specs]
    cats.insert(r.randint(0, len(cats)), {"mcc": ["6011"] if g.chance(0.3) else None,
                                          "default": fatal != "no_default"})
    if fatal == "two_defaults":
        cats[0]["default"] = cats[-1]["default"] = True
    for i, c in enumerate(cats):
        lines += ["", "[[category]]", f'name = "cat{i}"']
        if c["mcc"] is not None:
            lines.append("mcc = [" + ", ".join(f'"{x}"' for x in c["mcc"]) + "]")
        if c["default"]:
            lines.append("default = true")
        for card in ("debit", "credit"):
            rate = "0.0050" if fatal == "rate_too_high" and i == 0 else r.choice(allowed)
            lines.append(f'{card}_rate = "{rate}"')
            if g.chance(0.4):
                lines.append(f'{card}_cap = "{r.choice(CAPS)}"')
    return "\n".join(lines) + "\n", tz_min, lag


def csv_quote(field, always=False):
    if always or any(c in field for c in ',"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def write_csv(g, path, header, rows, eol=None, extra_noise=True):
    """rows: list of lists of str (already possibly containing raw fragments) or raw
    str lines. Line ends, blank lines, BOM and quoting noise are chosen here."""
    r = g.r
    eol = eol or r.choice(["\n", "\n", "\r\n", "mixed", "\r"])
    out = []

    def end():
        return r.choice(["\n", "\r\n"]) if eol == "mixed" else eol

    if extra_noise and g.chance(0.15):
        out.append(b"\xef\xbb\xbf")
    if extra_noise and g.chance(0.2):
        out.append(end().encode())
    out.append((",".join(csv_quote(h, g.chance(0.1)) for h in header) + end()).encode())
    for row in rows:
        if extra_noise and g.chance(0.06):
            out.append(end().encode())  # blank line
        if isinstance(row, bytes):
            out.append(row + end().encode())
        elif isinstance(row, str):
            out.append((row + end()).encode())
        else:
            fields = [f if isinstance(f, bytes) else csv_quote(f, g.chance(0.1)).encode()
                      for f in row]
            out.append(b",".join(fields) + end().encode())
    data = b"".join(out)
    if extra_noise and g.chance(0.2):
        data = data.rstrip(b"\r\n")  # no line end after the last record
    with open(path, "wb") as fh:
        fh.write(data)


def make_merchants(g, base, fatal):
    r = g.r
    ids = r.sample(["M1", "M2", "M3", "M4", "M5", "M10", "m3", "MX-01", "\u5546\u62377", "Z9",
                    "M_a"], r.randint(3, 8))
    ms = []
    for mid in ids:
        act = base + r.randint(-8, 4)
        deact = act + r.randint(0, 7) if g.chance(0.5) else None
        ms.append({"id": mid, "mcc": r.choice(MERCHANT_MCCS), "act": act, "deact": deact,
                   "deposit": r.choice(["0.00", "0", "50.00", "120.50", "300", "1000.00", "5"])})
    header = ["merchant_id", "mcc", "activated_on", "deposit", "deactivated_on"]
    r.shuffle(header)
    rows = []
    for m in ms:
        vals = {"merchant_id": m["id"], "mcc": m["mcc"], "activated_on": day_str(m["act"]),
                "deposit": m["deposit"],
                "deactivated_on": day_str(m["deact"]) if m["deact"] is not None else ""}
        rows.append([vals[h] for h in header])
    if fatal == "bad_merchant":
        bad = {"merchant_id": ms[0]["id"], "mcc": "581", "activated_on": "2026-02-30",
               "deposit": "-1", "deactivated_on": ""}
        rows.append([bad[h] for h in header])
    return ms, header, rows


def make_transactions(g, ms, tz_min, base, fatal):
    r = g.r
    mids = [m["id"] for m in ms]
    n = r.randint(20, 80)
    txns = []  # dicts: id, merchant, instant, type, amount, card, orig, mcc, terminal
    purchases = []
    next_id = [1]

    def new_id():
        next_id[0] += 1
        return f"T{next_id[0]}"

    def same_amount(text):  # the same amount, maybe written another way: 10 / 10.0 / 010.00
        return r.choice([text, str(Decimal(text).quantize(Decimal("0.01"))), "0" + text])

    def active_day(m):
        lo = max(m["act"], base - 6)
        hi = min(m["deact"] if m["deact"] is not None else m["act"] + 8, base + 8)
        if lo <= hi and g.chance(0.85):
            return r.randint(lo, hi)
        return r.randint(base - 9, base + 11)

    while len(txns) < n:
        kind = r.random()
        if kind < 0.45 or not purchases:
            m = r.choice(ms)
            t = {"id": new_id(), "merchant": m["id"], "type": "purchase",
                 "instant": g.local_instant(active_day(m), tz_min), "amount": r.choice(AMOUNTS),
                 "card": r.choice(["debit", "credit"]), "orig": "",
                 "mcc": r.choice(MERCHANT_MCCS) if g.chance(0.25) else ""}
            if g.chance(0.08):
                t["merchant"] = r.choice(["M99", "m1", "M1 ", ""])
            purchases.append(t)
        elif kind < 0.75:  # refund
            p = r.choice(purchases)
            hours = r.choice([0, 1, 5, 20, 30, 50, 100, -2])
            pa = Decimal(p["amount"])
            half = (pa / 2).quantize(Decimal("0.01"))
            amount = r.choice([p["amount"], same_amount(p["amount"]), str(half), str(half),
                               str(pa + 1), "1.00", "0.01", "10"])
            t = {"id": new_id(), "merchant": p["merchant"], "type": "refund",
                 "instant": p["instant"] + hours * 3600 * NS + r.randint(0, 3599) * NS,
                 "amount": amount, "card": r.choice(["", "", "debit", "bogus"]), "orig": p["id"],
                 "mcc": ""}
            if g.chance(0.1):
                t["merchant"] = r.choice(mids)
            if g.chance(0.05):
                t["orig"] = r.choice(["T9999", t["id"], txns[-1]["id"] if txns else "T1"])
        else:  # void
            p = r.choice(purchases)
            delay = r.choice([60 * NS, 300 * NS, 0, 3600 * 26 * NS, -60 * NS, -10**6, 1])
            amount = same_amount(p["amount"]) if g.chance(0.8) else r.choice(["1.00", "0.01"])
            t = {"id": new_id(), "merchant": p["merchant"], "type": "void",
                 "instant": p["instant"] + delay, "amount": amount, "card": "", "orig": p["id"],
                 "mcc": ""}
        t["terminal"] = r.choice(["", "POS-1", "POS,2", "line1\nline2", 'say "hi"', "T\r\nX"])
        if g.chance(0.05) and txns:  # duplicate id
            t["id"] = r.choice(txns)["id"]
        txns.append(t)
    if g.chance(0.3):
        r.shuffle(txns)
    return txns


def txn_rows(g, txns, tz_min, header, level):
    """Render the rows, with field-level damage (more of it with a higher level)."""
    r = g.r
    rows = []
    for t in txns:
        vals = {"txn_id": t["id"], "merchant_id": t["merchant"],
                "ts": g.render_ts(t["instant"], tz_min), "type": t["type"],
                "amount": t["amount"], "card": t["card"], "orig_txn_id": t["orig"],
                "mcc": t["mcc"], "terminal_id": t["terminal"], "note": "x", "": ""}
        damage = r.random() / level
        if damage < 0.03:
            vals["amount"] = r.choice(BAD_AMOUNTS)
        elif damage < 0.06:
            vals["ts"] = r.choice(BAD_TS)
        elif damage < 0.08:
            vals["type"] = r.choice(BAD_TYPES)
        elif damage < 0.10 and t["type"] == "purchase":
            vals["card"] = r.choice(BAD_CARDS + [""])
        elif damage < 0.12:
            vals["mcc"] = r.choice(BAD_MCCS)
        elif damage < 0.13:
            vals["txn_id"] = r.choice(["", "X" * 65, "\u4e2d" * 22, "Y" * 64])
        elif damage < 0.14:
            vals["merchant_id"] = "M" * 33
        elif damage < 0.15 and t["type"] != "purchase":
            vals["orig_txn_id"] = ""
        fields = [vals[h] for h in header]
        noise = r.random() / level
        if noise < 0.05:
            fields.append("extra")  # field count differs
        elif noise < 0.07 and len(fields) > 5:
            fields.pop()
        elif noise < 0.10:  # padding, which trimming removes
            i = r.randrange(len(fields))
            fields[i] = r.choice([" ", "\t", " \t"]) + fields[i] + r.choice(["", " ", "\t"])
        elif noise < 0.12 and "terminal_id" in header:  # invalid UTF-8
            i = header.index(r.choice(["terminal_id", "terminal_id", "txn_id"]))
            fields[i] = fields[i].encode() + b"\xff\xfe"
        elif noise < 0.14:  # a quote in the middle of a field, text after a closing quote
            i = header.index(r.choice(["txn_id", "terminal_id"] if "terminal_id" in header
                                      else ["txn_id"]))
            fields[i] = r.choice([f'"{t["id"]}"x'.encode(), b'ab"c', f' "{t["id"]}"'.encode()])
        rows.append(fields)
        if g.chance(0.03 * level):
            rows.append(r.choice(["   ", "\t", " , ,"]))  # a line of spaces is a row
    return rows


def make_adjustments(g, ms, base, lag):
    r = g.r
    rows = []
    for i in range(r.randint(0, 8)):
        adj_id = f"A{i}" if not (rows and g.chance(0.15)) else rows[-1][0]
        mid = r.choice([m["id"] for m in ms]) if g.chance(0.9) else "M99"
        date = day_str(base + lag + r.randint(-9, 12)) if g.chance(0.9) else "2026-13-01"
        amount = r.choice(["199.00", "-50.00", "0.00", "-0", "12.345", "+5", "3", "-1000.00",
                           "25.5"])
        reason = r.choice(["fee returned", "manual charge, agreed", "", 'said "ok"'])
        row = [adj_id, mid, date, amount, reason]
        if g.chance(0.05):
            row = row[:4]
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    g = Gen(a.seed)
    r = g.r
    os.makedirs(a.out, exist_ok=True)
    fatal = None
    if g.chance(1 / 12):
        fatal = r.choice(["rate_too_high", "unknown_key", "overlap", "bad_range", "no_default",
                          "two_defaults", "float_rate", "bad_merchant", "txn_header",
                          "adj_header"])
    base = (dt.datetime.strptime(r.choice(["2026-11-01", "2026-12-28", "2028-02-25",
                                           "2026-03-01"]), "%Y-%m-%d") - EPOCH).days
    base += r.randint(-3, 3)
    toml_text, tz_min, lag = make_config(g, fatal)
    with open(os.path.join(a.out, "settle.toml"), "w") as fh:
        fh.write(toml_text)
    ms, mheader, mrows = make_merchants(g, base, fatal)
    write_csv(g, os.path.join(a.out, "merchants.csv"), mheader, mrows, extra_noise=False)

    txns = make_transactions(g, ms, tz_min, base, fatal)
    level = r.choice([0.2, 0.6, 1, 1.3])  # how much row damage
    nfiles = r.choice([1, 2])
    cut = r.randint(len(txns) // 3, len(txns)) if nfiles == 2 else len(txns)
    parts = [txns[:cut], txns[cut:]][:nfiles]
    names = []
    for k, part in enumerate(parts):
        header = ["txn_id", "merchant_id", "ts", "type", "amount"]
        header += [c for c, p in (("card", 0.985), ("orig_txn_id", 0.985), ("mcc", 0.7),
                                  ("terminal_id", 0.6), ("note", 0.15), ("", 0.08))
                   if g.chance(p)]
        r.shuffle(header)
        if fatal == "txn_header" and k == 0:
            header = r.choice([[h for h in header if h != "amount"], header + ["ts"]])
        rows = txn_rows(g, part, tz_min, header, level) if g.chance(0.97) else []
        name = f"txns{k + 1}.csv"
        write_csv(g, os.path.join(a.out, name), header, rows)
        if g.chance(0.08) and k == len(parts) - 1:  # an unterminated quote at the end
            with open(os.path.join(a.out, name), "ab") as fh:
                fh.write(b'\nT777,M1,"2026-11-01 10:00:00,purchase,5.00,debit')
        names.append(name)
    args = []
    if g.chance(0.5):  # difftest passes --adjustments when adjustments.csv exists
        adj_header = ["adj_id", "merchant_id", "settlement_date", "amount", "reason"]
        if fatal == "adj_header":
            adj_header = adj_header[:4]
        write_csv(g, os.path.join(a.out, "adjustments.csv"), adj_header,
                  make_adjustments(g, ms, base, lag))
    if g.chance(0.35):  # sometimes before every transaction: a run without a start
        args += ["--through", day_str(base + r.choice([r.randint(-2, 12), -30]))]
    with open(os.path.join(a.out, "args"), "w") as fh:
        fh.write(" ".join(args) + "\n")


if __name__ == "__main__":
    main()
