#!/usr/bin/env python3
"""settle_oracle: an independent, deliberately simple reference implementation of
RULES.md sections 1-5, for differential testing of the Rust `settle` engine.

    python3 settle_oracle.py run --config F --merchants F --transactions F [F ...]
        [--adjustments F] [--through YYYY-MM-DD] --out DIR

Standard library only. Money is integer fen, rates are integer ppm (1e-6); no
float touches money. Written for obviousness, not speed. See README.md beside
this file for the points where RULES.md was ambiguous and what was chosen.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import tomllib
import types

# --------------------------------------------------------------------------
# Errors


class Fatal(Exception):
    """Bad usage, configuration, master data or header: exit 2, nothing written."""


class RunFailure(Exception):
    """A failure during the run (conservation, I/O): exit 1, nothing written."""


# --------------------------------------------------------------------------
# Numbers. `[0-9]` (never `\d`, which matches non-ASCII digits).

AMOUNT_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,2}))?")
RATE_RE = re.compile(r"([0-9]+)(?:\.([0-9]{1,6}))?")
MCC_RE = re.compile(r"[0-9]{4}")
AMOUNT_LIMIT_FEN = 10**12 * 100  # an amount of 10^12 or more is out of range


def parse_amount(s, signed=False):
    """'DIGITS', 'DIGITS.D' or 'DIGITS.DD' (leading '-' only if signed) -> fen, or None."""
    m = AMOUNT_RE.fullmatch(s)
    if m is None or (m.group(1) and not signed):
        return None
    fen = int(m.group(2)) * 100 + int((m.group(3) or "").ljust(2, "0"))
    if fen >= AMOUNT_LIMIT_FEN:
        return None
    return -fen if m.group(1) else fen


def parse_rate(s):
    """'DIGITS' or 'DIGITS.D{1,6}' -> parts per million, or None."""
    m = RATE_RE.fullmatch(s)
    if m is None:
        return None
    return int(m.group(1)) * 10**6 + int((m.group(2) or "").ljust(6, "0"))


def div_round(num, den, mode):
    """round(num / den) to an integer, num >= 0, den > 0, half_up or half_even."""
    assert num >= 0 and den > 0
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and (mode == "half_up" or q % 2 == 1)):
        q += 1
    return q


def fmt_fen(fen):
    """Exactly two fractional digits, never -0.00."""
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


# --------------------------------------------------------------------------
# Dates: proleptic Gregorian day numbers (days since 1970-01-01), own algorithm
# so that any YYYY (0000-9999) works.


def days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def days_in_month(y, m):
    if m == 2:
        leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
        return 29 if leap else 28
    return 30 if m in (4, 6, 9, 11) else 31


DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
OFFSET_RE = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")


def ymd_to_day(y, m, d):
    y, m, d = int(y), int(m), int(d)
    if not (1 <= m <= 12 and 1 <= d <= days_in_month(y, m)):
        return None
    return days_from_civil(y, m, d)


def parse_date(s):
    m = DATE_RE.fullmatch(s)
    return None if m is None else ymd_to_day(*m.groups())


def fmt_date(day):
    y, m, d = civil_from_days(day)
    return f"{y:04d}-{m:02d}-{d:02d}"


def parse_offset_minutes(s):
    """'Z' or '+hh:mm' / '-hh:mm' (hh <= 23, mm <= 59) -> minutes east of UTC, or None."""
    if s == "Z":
        return 0
    m = OFFSET_RE.fullmatch(s)
    if m is None or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return -minutes if m.group(1) == "-" else minutes


def parse_ts(s, tz_minutes):
    """-> (instant in ns since the epoch, business day number), or None."""
    m = TS_RE.fullmatch(s)
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    day = ymd_to_day(y, mo, d)
    if day is None or int(hh) > 23 or int(mi) > 59 or int(ss) > 59:
        return None
    offset = tz_minutes if off is None else parse_offset_minutes(off)
    if offset is None:
        return None
    local_s = day * 86400 + int(hh) * 3600 + int(mi) * 60 + int(ss)
    utc_s = local_s - offset * 60
    instant_ns = utc_s * 10**9 + int((frac or "").ljust(9, "0"))
    business_day = (utc_s + tz_minutes * 60) // 86400
    return instant_ns, business_day


# --------------------------------------------------------------------------
# CSV: own RFC 4180 tokenizer over bytes, counting physical lines.

LF, CR, QUOTE, COMMA = 10, 13, 34, 44


class Record:
    """One record: the physical line it starts on, its raw fields, and whether a
    quoted field ran off the end of the file."""

    def __init__(self, line, raw_fields, unterminated):
        self.line = line
        self.raw_fields = raw_fields
        self.unterminated = unterminated
        try:
            self.fields = [f.decode("utf-8").strip(" \t") for f in raw_fields]
        except UnicodeDecodeError:
            self.fields = None  # not valid UTF-8

    def field_str(self, index):
        """The trimmed field at index if it decodes as UTF-8, else ''."""
        try:
            return self.raw_fields[index].decode("utf-8").strip(" \t")
        except (UnicodeDecodeError, IndexError):
            return ""


def tokenize(data):
    """Split bytes into Records. LF, CR LF and lone CR end a line (inside quotes
    too); blank lines are skipped; a quote is special only at a field's start."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    records = []
    n = len(data)
    i = 0
    line = 1

    def eol_len(j):  # length of the line end starting at j (data[j] is CR or LF)
        return 2 if data[j] == CR and j + 1 < n and data[j + 1] == LF else 1

    while i < n:
        if data[i] in (CR, LF):  # a blank line: nothing between two line ends
            i += eol_len(i)
            line += 1
            continue
        start_line = line
        fields = []
        unterminated = False
        while True:
            field = bytearray()
            if i < n and data[i] == QUOTE:
                i += 1
                closed = False
                while i < n:
                    c = data[i]
                    if c == QUOTE:
                        if i + 1 < n and data[i + 1] == QUOTE:
                            field.append(QUOTE)
                            i += 2
                            continue
                        i += 1
                        closed = True
                        break
                    if c in (CR, LF):
                        k = eol_len(i)
                        field += data[i:i + k]
                        i += k
                        line += 1
                        continue
                    field.append(c)
                    i += 1
                if not closed:
                    unterminated = True
                    fields.append(bytes(field))
                    break
            # unquoted field, or what follows a closing quote: taken literally
            while i < n and data[i] not in (COMMA, CR, LF):
                field.append(data[i])
                i += 1
            fields.append(bytes(field))
            if i < n and data[i] == COMMA:
                i += 1
                continue
            if i < n:
                i += eol_len(i)
                line += 1
            break
        records.append(Record(start_line, fields, unterminated))
    return records


def read_input(path):
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Fatal(f"{path}: cannot read: {e.strerror}")


class CsvFile:
    """A CSV input: header checked (fatal on any problem), then data records."""

    def __init__(self, path, required):
        self.path = path
        records = tokenize(read_input(path))
        if not records:
            raise Fatal(f"{path}: no header row")
        header = records[0]
        if header.unterminated or header.fields is None:
            raise Fatal(f"{path}: line {header.line}: unreadable header row")
        self.ncols = len(header.fields)
        self.col = {}
        for index, name in enumerate(header.fields):
            if name == "":
                continue
            if name in self.col:
                raise Fatal(f"{path}: header names column '{name}' twice")
            self.col[name] = index
        for name in required:
            if name not in self.col:
                raise Fatal(f"{path}: header lacks required column '{name}'")
        self.rows = records[1:]

    def shape_ok(self, rec):
        """Structure of the record: well terminated, UTF-8, right field count."""
        return not rec.unterminated and rec.fields is not None and len(rec.fields) == self.ncols

    def get(self, rec, name):
        """Field by column name; '' if the column is absent."""
        idx = self.col.get(name)
        return "" if idx is None else rec.fields[idx]

    def id_for_reject(self, rec, name):
        """The trimmed id field for rejects.csv: empty when the field count differs."""
        if len(rec.raw_fields) != self.ncols:
            return ""
        return rec.field_str(self.col[name])


def csv_field(s):
    if any(c in s for c in ",\"\r\n"):
        return '"' + s.replace('"', '""') + '"'
    return s


def csv_line(fields):
    return ",".join(csv_field(f) for f in fields) + "\n"


# --------------------------------------------------------------------------
# Configuration

DEFAULTS = {
    "timezone": "+08:00",
    "settlement_lag_days": 1,
    "rounding": "half_up",
    "max_rate": "0.0049",
    "max_txn_amount": "50000.00",
    "refund_fee": "kept",
    "refund_retention_days": 180,
}
DEPOSIT_DEFAULTS = {"refund_volume": "30000.00", "refund_window_days": 90}
DEACT_DEFAULTS = {"fee": "199.00", "return_window_days": 30}
CATEGORY_KEYS = {"name", "mcc", "default", "debit_rate", "credit_rate", "debit_cap", "credit_cap"}


def cfg_err(key, problem):
    raise Fatal(f"configuration: {key}: {problem}")


def take_table(tbl, defaults, prefix):
    """Check a table's keys against the known ones and fill in defaults."""
    out = dict(defaults)
    for k, v in tbl.items():
        if k not in defaults:
            cfg_err(prefix + k, "unknown key")
        out[k] = v
    return out


def want_int(key, v, minimum):
    if type(v) is not int:
        cfg_err(key, "must be an integer")
    if v < minimum:
        cfg_err(key, f"must be at least {minimum}")
    return v


def want_str(key, v):
    if type(v) is not str:
        cfg_err(key, "must be a string")
    return v


def want_amount(key, v):
    fen = parse_amount(want_str(key, v))
    if fen is None:
        cfg_err(key, "must be an amount DIGITS[.D[D]] below 10^12, as a string")
    return fen


def want_rate(key, v):
    ppm = parse_rate(want_str(key, v))
    if ppm is None:
        cfg_err(key, "must be a decimal rate with at most 6 fractional digits, as a string")
    return ppm


def want_choice(key, v, choices):
    return v if want_str(key, v) in choices else cfg_err(key, f"must be one of {choices}")


def parse_mcc_spec(key, s):
    """'dddd' or 'dddd-dddd' (lo <= hi) -> (lo, hi)."""
    parts = want_str(key, s).split("-")
    if len(parts) == 1 and MCC_RE.fullmatch(parts[0]):
        return int(parts[0]), int(parts[0])
    if len(parts) == 2 and all(MCC_RE.fullmatch(p) for p in parts) and parts[0] <= parts[1]:
        return int(parts[0]), int(parts[1])
    cfg_err(key, f"malformed MCC code or range '{s}'")


def load_config(path):
    raw = read_input(path)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise Fatal(f"{path}: not valid TOML: {e}")
    top_defaults = dict(DEFAULTS, deposit={}, deactivation={}, category=None)
    top = take_table(doc, top_defaults, "")
    c = types.SimpleNamespace()
    tz = want_str("timezone", top["timezone"])
    c.tz_minutes = parse_offset_minutes(tz)
    if c.tz_minutes is None:
        cfg_err("timezone", "must be a UTC offset +hh:mm or -hh:mm")
    c.lag = want_int("settlement_lag_days", top["settlement_lag_days"], 0)
    c.rounding = want_choice("rounding", top["rounding"], ("half_up", "half_even"))
    c.max_rate = want_rate("max_rate", top["max_rate"])
    if c.max_rate > 10**6:
        cfg_err("max_rate", "must not exceed 1")
    c.max_txn = want_amount("max_txn_amount", top["max_txn_amount"])
    c.refund_fee = want_choice("refund_fee", top["refund_fee"], ("kept", "proportional"))
    c.retention = want_int("refund_retention_days", top["refund_retention_days"], 0)
    for name in ("deposit", "deactivation"):
        if not isinstance(top[name], dict):
            cfg_err(name, "must be a table")
    dep = take_table(top["deposit"], DEPOSIT_DEFAULTS, "deposit.")
    c.refund_volume = want_amount("deposit.refund_volume", dep["refund_volume"])
    c.window_days = want_int("deposit.refund_window_days", dep["refund_window_days"], 1)
    dea = take_table(top["deactivation"], DEACT_DEFAULTS, "deactivation.")
    c.deact_fee = want_amount("deactivation.fee", dea["fee"])
    c.return_days = want_int("deactivation.return_window_days", dea["return_window_days"], 0)

    cats = top["category"]
    if cats is None:
        cfg_err("category", "no categories: exactly one must be the default")
    if not isinstance(cats, list) or not all(isinstance(t, dict) for t in cats):
        cfg_err("category", "must be an array of tables [[category]]")
    c.categories = []  # (name, rates {card: ppm}, caps {card: fen or None}, ranges)
    c.default = None
    names = set()
    owner = {}  # code -> category name, to find a code in two categories
    for i, t in enumerate(cats):
        key = f"category[{i}]"
        for k in t:
            if k not in CATEGORY_KEYS:
                cfg_err(f"{key}.{k}", "unknown key")
        for k in ("name", "debit_rate", "credit_rate"):
            if k not in t:
                cfg_err(f"{key}.{k}", "missing")
        name = want_str(f"{key}.name", t["name"])
        if name == "" or name in names:
            cfg_err(f"{key}.name", "empty or repeated category name")
        names.add(name)
        rates, caps = {}, {}
        for card in ("debit", "credit"):
            rate = want_rate(f"{key}.{card}_rate", t[f"{card}_rate"])
            if rate > c.max_rate:
                cfg_err(f"{key}.{card}_rate", "above max_rate")
            rates[card] = rate
            cap_key = f"{card}_cap"
            caps[card] = want_amount(f"{key}.{cap_key}", t[cap_key]) if cap_key in t else None
        is_default = t.get("default", False)
        if type(is_default) is not bool:
            cfg_err(f"{key}.default", "must be true or false")
        codes = t.get("mcc", [])
        if not isinstance(codes, list):
            cfg_err(f"{key}.mcc", "must be an array of strings")
        if not codes and not is_default:
            cfg_err(f"{key}.mcc", "a category that is not the default needs MCC codes")
        ranges = [parse_mcc_spec(f"{key}.mcc", s) for s in codes]
        for lo, hi in ranges:
            for code in range(lo, hi + 1):
                if owner.get(code, name) != name:
                    cfg_err(f"{key}.mcc", f"code {code:04d} also in category '{owner[code]}'")
                owner[code] = name
        if is_default:
            if c.default is not None:
                cfg_err(f"{key}.default", "more than one default category")
            c.default = (name, rates, caps)
        c.categories.append((name, rates, caps, ranges))
    if c.default is None:
        cfg_err("category", "no default category")
    return c


def category_for(cfg, mcc):
    code = int(mcc)
    for name, rates, caps, ranges in cfg.categories:
        if any(lo <= code <= hi for lo, hi in ranges):
            return name, rates, caps
    return cfg.default


# --------------------------------------------------------------------------
# Merchants


def load_merchants(path):
    f = CsvFile(path, ("merchant_id", "mcc", "activated_on", "deposit"))
    merchants, bad = {}, []
    for rec in f.rows:
        if not f.shape_ok(rec):
            bad.append((rec.line, "malformed row"))
            continue
        mid = f.get(rec, "merchant_id")
        mcc = f.get(rec, "mcc")
        act = parse_date(f.get(rec, "activated_on"))
        deposit = parse_amount(f.get(rec, "deposit"))
        deact_s = f.get(rec, "deactivated_on")
        deact = parse_date(deact_s) if deact_s else None
        problem = None
        if not (1 <= len(mid.encode()) <= 32):
            problem = "merchant_id must be 1 to 32 bytes"
        elif mid in merchants:
            problem = f"merchant_id {mid} repeated"
        elif not MCC_RE.fullmatch(mcc):
            problem = "mcc must be 4 digits"
        elif act is None:
            problem = "activated_on must be a date YYYY-MM-DD"
        elif deposit is None:
            problem = "deposit must be an amount >= 0"
        elif deact_s and (deact is None or deact < act):
            problem = "deactivated_on must be a date not before activated_on"
        if problem:
            bad.append((rec.line, problem))
        else:
            merchants[mid] = types.SimpleNamespace(mid=mid, mcc=mcc, act=act, deposit=deposit,
                                                   deact=deact)
    if bad:
        raise Fatal("; ".join(f"{path}: line {ln}: {p}" for ln, p in bad))
    return merchants


# --------------------------------------------------------------------------
# Transactions: validation 3.3 steps 1-5, then 3.2

TXN_REQUIRED = ("txn_id", "merchant_id", "ts", "type", "amount")


def validate_row(f, rec, cfg, merchants, through, seen_ids):
    """3.3 steps 1-5 for one row -> (reason or None, detail, Txn or None)."""
    if not f.shape_ok(rec):
        return "malformed_row", "unreadable row (encoding, quoting or field count)", None
    g = lambda name: f.get(rec, name)  # noqa: E731
    ttype = g("type")
    for name in TXN_REQUIRED:
        if g(name) == "":
            return "malformed_row", f"empty required field {name}", None
    if ttype == "purchase" and g("card") == "":
        return "malformed_row", "a purchase needs a card", None
    if ttype in ("refund", "void") and g("orig_txn_id") == "":
        return "malformed_row", f"a {ttype} needs an orig_txn_id", None
    if len(g("txn_id").encode()) > 64:
        return "malformed_row", "txn_id over 64 bytes", None
    if len(g("merchant_id").encode()) > 32:
        return "malformed_row", "merchant_id over 32 bytes", None
    amount = parse_amount(g("amount"))
    if amount is None or amount <= 0:
        return "bad_amount", f"amount '{g('amount')}' is not a positive amount", None
    ts = parse_ts(g("ts"), cfg.tz_minutes)
    if ts is None:
        return "bad_timestamp", f"ts '{g('ts')}' is not a valid timestamp", None
    if ttype not in ("purchase", "refund", "void"):
        return "bad_type", f"type '{ttype}' is unknown", None
    if ttype == "purchase" and g("card") not in ("debit", "credit"):
        return "bad_card", f"card '{g('card')}' is neither debit nor credit", None
    if g("mcc") != "" and not MCC_RE.fullmatch(g("mcc")):
        return "bad_mcc", f"mcc '{g('mcc')}' is not 4 digits", None
    tid = g("txn_id")
    if tid in seen_ids:
        return "duplicate_txn_id", f"txn_id {tid} already taken", None
    seen_ids.add(tid)
    m = merchants.get(g("merchant_id"))
    bday = ts[1]
    if m is None:
        return "unknown_merchant", f"merchant {g('merchant_id')} is not in master data", None
    if bday < m.act or (m.deact is not None and bday > m.deact):
        return "merchant_inactive", f"merchant not active on {fmt_date(bday)}", None
    if through is not None and bday > through:
        return "beyond_horizon", f"business date {fmt_date(bday)} after --through", None
    if ttype == "purchase" and amount > cfg.max_txn:
        return "over_limit", "purchase above max_txn_amount", None
    t = types.SimpleNamespace()
    t.id, t.merchant, t.type, t.amount = tid, m, ttype, amount
    t.instant, t.bday = ts
    t.card, t.orig, t.mcc = g("card"), g("orig_txn_id"), g("mcc")
    t.voided = False
    t.fee = 0  # purchase: its fee; refund: the fee it returns
    return None, "", t


def purchase_fee(cfg, t):
    _, rates, caps = category_for(cfg, t.mcc or t.merchant.mcc)
    fee = div_round(t.amount * rates[t.card], 10**6, cfg.rounding)
    if caps[t.card] is not None:
        fee = min(fee, caps[t.card])
    return fee


def apply_refunds_and_voids(cfg, pending, purchases, reject):
    """3.2. pending: [(seq, Txn)] of refunds/voids that passed steps 1-5, file order."""
    groups = {}
    for seq, t in pending:
        p = purchases.get(t.orig)
        if (p is None or p.merchant is not t.merchant or t.instant < p.instant
                or t.bday - p.bday > cfg.retention):
            reject(seq, "bad_reference", f"no matching purchase {t.orig} for this {t.type}")
            continue
        groups.setdefault(t.orig, []).append((t.instant, seq, t))
    accepted = []
    for orig, items in groups.items():
        p = purchases[orig]
        refunded = 0  # accepted refunds so far
        fee_returned = 0
        any_accepted = False
        for _, seq, t in sorted(items, key=lambda x: (x[0], x[1])):
            if t.type == "void":
                if t.bday != p.bday or t.amount != p.amount or any_accepted:
                    reject(seq, "bad_void", "void on another day, of another amount, or too late")
                    continue
                p.voided = True
            else:
                if p.voided:
                    reject(seq, "bad_reference", f"purchase {orig} was voided")
                    continue
                if refunded + t.amount > p.amount:
                    reject(seq, "refund_exceeds_original", f"refunds would exceed {orig}")
                    continue
                refunded += t.amount
                if cfg.refund_fee == "proportional":
                    now = div_round(p.fee * refunded, p.amount, cfg.rounding)
                    t.fee = now - fee_returned
                    fee_returned = now
            any_accepted = True
            accepted.append((seq, t))
    return accepted


# --------------------------------------------------------------------------
# Settlement

COLUMNS = ("settlement_date,merchant_id,txn_count,purchases,refunds,fees,adjustments,carried_in,"
           "proceeds,deposit_held,deposit_released,deposit_forfeited,deactivation_fee,payout,"
           "carried_out").split(",")
MONEY_COLUMNS = COLUMNS[3:]


def new_row():
    return {k: 0 for k in ["txn_count"] + MONEY_COLUMNS}


def deposit_fate(cfg, m, start, horizon, vol_by_day):
    """The event that decides the deposit's fate in this run: (day, kind) with kind
    'release' or 'forfeit', or None; and whether it is collecting at the run start."""
    win_last = m.act + cfg.window_days - 1
    if win_last < start or (m.deact is not None and m.deact < start):
        return None, False  # settled by an earlier run
    events = []  # (business day, priority, kind)
    vol = 0
    for day in range(m.act, min(win_last, horizon) + 1):
        vol += vol_by_day.get(day, 0)
        if day >= start and vol >= cfg.refund_volume:
            events.append((day, 0, "release"))
            break
    if m.deact is not None and start <= m.deact <= horizon:
        events.append((m.deact, 1, "release"))  # release of the final settlement
    if start <= win_last <= horizon:
        events.append((win_last, 2, "forfeit"))
    if not events:
        return None, True
    day, _, kind = min(events)
    return (day, kind), True


def settle(cfg, merchants, txns, adjustments, start, horizon):
    """-> {settlement day: {merchant_id: row}}."""
    per = {mid: {} for mid in merchants}  # mid -> {S: row}
    vol = {mid: {} for mid in merchants}  # mid -> {business day: net window volume delta}
    purchased = set()
    for t in txns:
        mid = t.merchant.mid
        row = per[mid].setdefault(t.bday + cfg.lag, new_row())
        row["txn_count"] += 1
        if t.type == "purchase":
            purchased.add(mid)
            if not t.voided:
                row["purchases"] += t.amount
                row["fees"] += t.fee
                vol[mid][t.bday] = vol[mid].get(t.bday, 0) + t.amount
        elif t.type == "refund":
            row["refunds"] += t.amount
            row["fees"] -= t.fee
            vol[mid][t.bday] = vol[mid].get(t.bday, 0) - t.amount
    for mid, s_day, amount in adjustments:
        per[mid].setdefault(s_day, new_row())["adjustments"] += amount

    out = {}
    for mid, m in merchants.items():
        rows = per[mid]
        fate, collecting = (None, False) if start is None else deposit_fate(
            cfg, m, start, horizon, vol[mid])
        fate_s = None
        if fate is not None:
            fate_s = fate[0] + cfg.lag
            rows.setdefault(fate_s, new_row())
        final_s = None
        if start is not None and m.deact is not None and start <= m.deact <= horizon:
            final_s = m.deact + cfg.lag
            rows.setdefault(final_s, new_row())
        held = 0
        carried = 0
        for s_day in sorted(rows):
            r = rows[s_day]
            r["carried_in"] = carried
            r["proceeds"] = (r["purchases"] - r["refunds"] - r["fees"] + r["adjustments"]
                             + r["carried_in"])
            if s_day == fate_s:
                r["deposit_released" if fate[1] == "release" else "deposit_forfeited"] = held
                held = 0
                collecting = False
            elif collecting and held < m.deposit and s_day != final_s:
                r["deposit_held"] = min(max(r["proceeds"], 0), m.deposit - held)
                held += r["deposit_held"]
            if s_day == final_s:
                collecting = False
                waived = (m.deact - m.act < cfg.return_days and mid not in purchased)
                r["deactivation_fee"] = 0 if waived else cfg.deact_fee
            net = r["proceeds"] - r["deposit_held"] + r["deposit_released"] - r["deactivation_fee"]
            r["payout"] = max(0, net)
            r["carried_out"] = min(0, net)
            carried = r["carried_out"]
            out.setdefault(s_day, {})[mid] = r
    return out


def conservation(out):
    tot = {k: 0 for k in MONEY_COLUMNS}
    first_in, last_out = {}, {}
    for s_day in sorted(out):
        for mid, r in out[s_day].items():
            for k in MONEY_COLUMNS:
                tot[k] += r[k]
            first_in.setdefault(mid, r["carried_in"])
            last_out[mid] = r["carried_out"]
    totals = {
        "purchases": tot["purchases"], "refunds": tot["refunds"], "fees": tot["fees"],
        "adjustments": tot["adjustments"], "carried_in_first": sum(first_in.values()),
        "payouts": tot["payout"], "deposit_held": tot["deposit_held"],
        "deposit_released": tot["deposit_released"],
        "deposit_forfeited": tot["deposit_forfeited"],
        "deactivation_fees": tot["deactivation_fee"], "carried_out_last": sum(last_out.values()),
    }
    lhs = (totals["purchases"] - totals["refunds"] - totals["fees"] + totals["adjustments"]
           + totals["carried_in_first"])
    rhs = (totals["payouts"] + totals["deposit_held"] - totals["deposit_released"]
           + totals["deactivation_fees"] + totals["carried_out_last"])
    if lhs != rhs:
        raise RunFailure(f"conservation does not hold: {fmt_fen(lhs)} != {fmt_fen(rhs)}")
    receivables = sorted((mid, -v) for mid, v in last_out.items() if v < 0)
    return totals, receivables


# --------------------------------------------------------------------------
# The run


def run(args):
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise Fatal(f"{args.out}: --out must not exist yet, or be empty")
    through = None
    if args.through is not None:
        through = parse_date(args.through)
        if through is None:
            raise Fatal(f"--through '{args.through}' is not a date YYYY-MM-DD")
    cfg = load_config(args.config)
    merchants = load_merchants(args.merchants)
    txn_files = [CsvFile(p, TXN_REQUIRED) for p in args.transactions]
    adj_file = None
    if args.adjustments is not None:
        adj_file = CsvFile(args.adjustments,
                           ("adj_id", "merchant_id", "settlement_date", "amount", "reason"))

    # 3.3 steps 1-5 in file order; seq is the global file order.
    rejects = {}  # seq -> (file, line, txn_id, reason, detail)
    where = {}  # seq -> (file, line, txn_id)
    seen_ids = set()
    purchases = {}
    pending = []
    accepted = []
    seq = 0
    for f in txn_files:
        for rec in f.rows:
            seq += 1
            where[seq] = (f.path, rec.line, f.id_for_reject(rec, "txn_id"))
            reason, detail, t = validate_row(f, rec, cfg, merchants, through, seen_ids)
            if reason is not None:
                rejects[seq] = where[seq] + (reason, detail)
            elif t.type == "purchase":
                t.fee = purchase_fee(cfg, t)
                purchases[t.id] = t
                accepted.append((seq, t))
            else:
                pending.append((seq, t))

    def reject(s, reason, detail):
        rejects[s] = where[s] + (reason, detail)

    accepted += apply_refunds_and_voids(cfg, pending, purchases, reject)
    accepted.sort(key=lambda x: x[0])
    assert len(accepted) + len(rejects) == seq
    assert not (set(rejects) & {s for s, _ in accepted})
    txns = [t for _, t in accepted]

    bdays = [t.bday for t in txns]
    horizon = through if through is not None else (max(bdays) if bdays else None)
    start = min(bdays) if bdays else None

    # 1.3 adjustments
    adj_rejects, adjustments = [], []
    if adj_file is not None:
        taken = set()
        for rec in adj_file.rows:
            adj_id = adj_file.id_for_reject(rec, "adj_id")
            problem = None
            if not adj_file.shape_ok(rec):
                problem = "unreadable row (encoding, quoting or field count)"
            else:
                g = lambda name: adj_file.get(rec, name)  # noqa: E731
                s_day = parse_date(g("settlement_date"))
                amount = parse_amount(g("amount"), signed=True)
                if adj_id == "":
                    problem = "empty adj_id"
                elif adj_id in taken:
                    problem = f"adj_id {adj_id} already taken"
                elif g("merchant_id") not in merchants:
                    problem = f"unknown merchant {g('merchant_id')}"
                elif s_day is None:
                    problem = "settlement_date is not a date YYYY-MM-DD"
                elif start is None or horizon is None:
                    problem = "this run owns no settlement date"
                elif not (start + cfg.lag <= s_day <= horizon + cfg.lag):
                    problem = "settlement_date not owned by this run"
                elif amount is None or amount == 0:
                    problem = "amount must be a non-zero signed amount"
                elif g("reason") == "":
                    problem = "empty reason"
            if problem is not None:
                adj_rejects.append((adj_file.path, rec.line, adj_id, "bad_adjustment", problem))
            else:
                taken.add(adj_id)
                adjustments.append((g("merchant_id"), s_day, amount))

    out = settle(cfg, merchants, txns, adjustments, start, horizon)
    totals, receivables = conservation(out)
    publish(args.out, out, [rejects[s] for s in sorted(rejects)] + adj_rejects, totals,
            receivables, start, horizon)


def publish(out_dir, out, reject_rows, totals, receivables, start, horizon):
    files = {}
    for s_day in sorted(out):
        lines = [",".join(COLUMNS) + "\n"]
        for mid in sorted(out[s_day], key=lambda x: x.encode()):
            r = out[s_day][mid]
            lines.append(csv_line([fmt_date(s_day), mid, str(r["txn_count"])]
                                  + [fmt_fen(r[k]) for k in MONEY_COLUMNS]))
        files[f"settlement-{fmt_date(s_day)}.csv"] = "".join(lines)
    files["rejects.csv"] = "file,line,txn_id,reason,detail\n" + "".join(
        csv_line([fl, str(ln), tid, reason, detail]) for fl, ln, tid, reason, detail in reject_rows)
    files["totals.json"] = json.dumps({
        "run": {"start": None if start is None else fmt_date(start),
                "horizon": None if horizon is None else fmt_date(horizon)},
        "totals": {k: fmt_fen(v) for k, v in totals.items()},
        "receivables": {"total": fmt_fen(sum(a for _, a in receivables)),
                        "merchants": [{"merchant_id": m, "amount": fmt_fen(a)}
                                      for m, a in receivables]},
        "balanced": True,
    }, indent=2) + "\n"
    parent = os.path.dirname(os.path.abspath(out_dir))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".settle-oracle-", dir=parent)
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)
        os.rename(tmp, out_dir)
    except OSError as e:
        raise RunFailure(f"{out_dir}: cannot publish: {e}")


def main(argv):
    ap = argparse.ArgumentParser(prog="settle_oracle.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--config", required=True)
    r.add_argument("--merchants", required=True)
    r.add_argument("--transactions", required=True, nargs="+")
    r.add_argument("--adjustments")
    r.add_argument("--through")
    r.add_argument("--out", required=True)
    args = ap.parse_args(argv)  # exits 2 on bad usage
    try:
        run(args)
    except Fatal as e:
        print(f"settle_oracle: {e}", file=sys.stderr)
        return 2
    except RunFailure as e:
        print(f"settle_oracle: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
