#!/usr/bin/env bash
# Reproducible benchmark: `settle run` against what analysts use today
# (DuckDB, Polars) for per-merchant, per-day purchase fee totals in exact
# decimals.
#
#   scripts/bench.sh [SIZES...]        default: 1000000 10000000 30000000
#   scripts/bench.sh 1000000           a quick run
#
# Environment: BENCH_THREADS (default "1 2"), BENCH_REPEAT (1: runs of each
# measured command; the median by wall time is reported, e.g. 3 on a noisy
# machine), BENCH_MERCHANTS (100000), BENCH_DAYS (30), BENCH_SEED (1),
# BENCH_KEEP=1 keeps every run's output folder under bench-data/runs/,
# BENCH_SETTLE (a settle binary to measure instead of building this tree).
#
# Everything it writes lies under bench-data/ (git-ignored): the generated
# data (gen-N/, made once per size), a venv with duckdb and polars
# (venv/, installed by this script when missing), the runs' outputs and logs
# (runs/), and the report, bench-data/results-YYYY-MM-DD.md (-HHMMSS added
# when that exists).
#
# Each measured command is its own process under /usr/bin/time -f '%e %M'
# (wall seconds, peak RSS in KiB); the transactions file is read once first
# so that every tool starts from a warm page cache. DuckDB and Polars run the
# bare aggregation (scripts/bench_compare.py); settle runs its whole
# pipeline (validation, linking, ledger, control totals, atomic publish).
# The floor: the input's SHA-256 and a write of the index's size, each
# timed alone (RULES.md requires both of every run; neither gets faster with
# threads), reported beside a fifth of DuckDB's best time.
# Then, untimed, the totals are checked: DuckDB and Polars must agree with
# each other, and, restricted to the purchases settle charged (from a
# --detail run), with settle's fees to the fen. Any difference is reported
# and the script exits 1.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=bench-data
VENV=$DATA/venv
PY=$VENV/bin/python
COMPARE=scripts/bench_compare.py
RUNS=$DATA/runs
# BENCH_SETTLE names another settle binary (an older build, to measure a
# change against it on the same data); the default is this tree's build.
SETTLE=${BENCH_SETTLE:-target/release/settle}
TIME=/usr/bin/time

if [ $# -gt 0 ]; then SIZES=("$@"); else SIZES=(1000000 10000000 30000000); fi
read -r -a THREADS <<<"${BENCH_THREADS:-1 2}"
MERCHANTS=${BENCH_MERCHANTS:-100000}
DAYS=${BENCH_DAYS:-30}
SEED=${BENCH_SEED:-1}
REPEAT=${BENCH_REPEAT:-1}
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_REPEAT must be a positive integer" >&2; exit 2; }

for n in "${SIZES[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench: size '$n' is not a positive integer" >&2; exit 2; }
done
[ -x "$TIME" ] || { echo "bench: $TIME is needed (apt-get install time)" >&2; exit 2; }

log() { printf '\n== %s\n' "$*" >&2; }

# --- 1. build -----------------------------------------------------------------
if [ -z "${BENCH_SETTLE:-}" ]; then
    log "cargo build --release"
    cargo build --release
fi
[ -x "$SETTLE" ] || { echo "bench: $SETTLE was not built" >&2; exit 1; }

# --- 2. venv with duckdb and polars -------------------------------------------
mkdir -p "$DATA" "$RUNS"
if [ ! -x "$PY" ]; then
    log "python3 -m venv $VENV"
    python3 -m venv "$VENV"
fi
if ! "$PY" -c 'import duckdb, polars' 2>/dev/null; then
    log "pip install duckdb polars (into $VENV)"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet duckdb polars
fi

# jget FILE KEY: a field of the RESULT {json} line that bench_compare.py printed.
jget() {
    "$PY" -c 'import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("RESULT ")][-1]
v = json.loads(line[7:])[sys.argv[2]]
print(json.dumps(v) if isinstance(v, (list, dict)) else v)' "$1" "$2"
}

STAMP=$(date +%Y-%m-%d)
REPORT=$DATA/results-$STAMP.md
[ ! -e "$REPORT" ] || REPORT=$DATA/results-$STAMP-$(date +%H%M%S).md
TSV=$RUNS/measurements.tsv
CHECKS=$RUNS/checks.md
STATS=$RUNS/settle-stats.md
COMMANDS=$RUNS/commands.md
: >"$TSV"
: >"$CHECKS"
: >"$STATS"
: >"$COMMANDS"
FAIL=0

loud() {
    FAIL=1
    printf '\n!!!!!!!! BENCH CHECK FAILED: %s\n' "$*" >&2
    printf -- '- **FAILED**: %s\n' "$*" >>"$CHECKS"
}

# measure SIZE TOOL THREADS BYTES LOGFILE CLEAN CMD...: runs CMD $REPEAT times
# under /usr/bin/time (CLEAN, unless "-", is removed before each run: settle's
# --out), stdout and stderr into LOGFILE (the last run's), and appends the
# median run (by wall time; its peak RSS and CPU time, user + system) and
# every run's wall to the TSV.
measure() {
    local size=$1 tool=$2 threads=$3 bytes=$4 logf=$5 clean=$6
    shift 6
    local tf=$RUNS/time.txt runs=() r wall rss user sys cpu
    printf -- '- `%s`\n' "$*" >>"$COMMANDS"
    echo "   $tool, $threads thread(s): $*" >&2
    for ((r = 1; r <= REPEAT; r++)); do
        [ "$clean" = - ] || rm -rf "$clean"
        if ! "$TIME" -f '%e %M %U %S' -o "$tf" "$@" >"$logf" 2>&1; then
            echo "bench: '$*' failed; its output:" >&2
            tail -n 30 "$logf" >&2
            exit 1
        fi
        read -r wall rss user sys < <(tail -n 1 "$tf")
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
        echo "   -> ${wall} s, CPU ${cpu} s, peak RSS $((rss / 1024)) MiB" >&2
        runs+=("$wall $rss $cpu")
    done
    read -r wall rss cpu < <(printf '%s\n' "${runs[@]}" | sort -n -k1,1 | sed -n "$(((REPEAT + 1) / 2))p")
    local walls
    walls=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f1 | paste -sd, -)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$tool" "$threads" "$wall" "$rss" "$bytes" \
        "$cpu" "$walls" >>"$TSV"
}

for N in "${SIZES[@]}"; do
    GEN=$DATA/gen-$N
    # --- 3. data, generated once per size ------------------------------------
    if [ ! -f "$GEN/transactions.csv" ]; then
        log "settle gen: $N rows into $GEN"
        rm -rf "$GEN.tmp"
        "$SETTLE" gen --merchants "$MERCHANTS" --rows "$N" --days "$DAYS" --seed "$SEED" \
            --out "$GEN.tmp"
        mv "$GEN.tmp" "$GEN"
    fi
    CFG=$GEN/settle.toml
    MER=$GEN/merchants.csv
    TXN=$GEN/transactions.csv
    RATES=$GEN/rates.csv
    "$PY" "$COMPARE" rates --config "$CFG" --out "$RATES" >/dev/null
    BYTES=$(stat -c %s "$TXN")
    log "$N rows: $TXN, $BYTES bytes; warming the page cache"
    cat "$TXN" "$MER" >/dev/null
    printf '\n**%s rows** (`%s`, %s bytes; load average before: %s)\n\n' "$N" "$TXN" "$BYTES" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$COMMANDS"

    # --- 4. settle run ---------------------------------------------------------
    for T in "${THREADS[@]}"; do
        OUT=$RUNS/settle-$N-t$T
        measure "$N" settle "$T" "$BYTES" "$RUNS/settle-$N-t$T.log" "$OUT" \
            "$SETTLE" run --config "$CFG" --merchants "$MER" --transactions "$TXN" \
            --threads "$T" --stats --out "$OUT"
        printf '\n`settle run`, %s rows, %s thread(s) (`--stats`):\n\n```\n%s\n```\n' \
            "$N" "$T" "$(cat "$RUNS/settle-$N-t$T.log")" >>"$STATS"
        # By size alone: reading the index (written past the page cache) would
        # pull it into the cache and evict the input before the next run.
        INDEX_BYTES=$(stat -c %s "$OUT"/state/index-*.seg | awk '{ n += $1 } END { print n }')
        [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$OUT"
    done

    # --- 5. DuckDB and Polars, the bare aggregation -----------------------------
    declare -A TOTAL=()
    for tool in duckdb polars; do
        for T in "${THREADS[@]}"; do
            LOGF=$RUNS/$tool-$N-t$T.log
            measure "$N" "$tool" "$T" "$BYTES" "$LOGF" - \
                "$PY" "$COMPARE" "$tool" --rates "$RATES" --merchants "$MER" \
                --transactions "$TXN" --threads "$T" --out "$RUNS/$tool-$N-t$T.csv"
            TOTAL[$tool-$T]="$(jget "$LOGF" fee_total) $(jget "$LOGF" purchases) $(jget "$LOGF" groups)"
            [ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$RUNS/$tool-$N-t$T.csv"
        done
    done

    # --- 5b. the floor: two things RULES.md makes every run do, each alone -------
    # The input's SHA-256 (one sequential chain, whatever the thread count)
    # and writing the end state's index, timed by themselves: with DuckDB's
    # best time they bound the ratio any engine could reach on this machine.
    SHA_S=$("$PY" - "$TXN" <<'PYEOF'
import hashlib, mmap, sys, time
with open(sys.argv[1], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        hashlib.sha256(m).digest()
        times.append(time.perf_counter() - started)
print(f"{min(times):.2f}")
PYEOF
)
    FLOOR_FILE=$RUNS/floor-write.tmp
    MIB=$(((INDEX_BYTES + 1048575) / 1048576))
    DD_LINE=$(dd if=/dev/zero of="$FLOOR_FILE" bs=1M count="$MIB" oflag=direct 2>&1 ||
        dd if=/dev/zero of="$FLOOR_FILE" bs=1M count="$MIB" conv=fsync 2>&1)
    rm -f "$FLOOR_FILE"
    WRITE_S=$(tail -n 1 <<<"$DD_LINE" | awk -F', ' '{sub(/ s$/, "", $(NF-1)); printf "%.2f", $(NF-1)}')
    DUCK_BEST=$(awk -F'\t' -v n="$N" '$1 == n && $2 == "duckdb" { if (best == "" || $4 < best) best = $4 } END { print best }' "$TSV")
    printf -- '- %s rows, the floor: the input'"'"'s SHA-256 alone takes %s s (one core; Python hashlib, best of 3), writing the %s MB index alone %s s (dd, direct I/O); DuckDB'"'"'s best wall / 5 = %s s\n' \
        "$N" "$SHA_S" "$((INDEX_BYTES / 1000000))" "$WRITE_S" "$(awk -v d="$DUCK_BEST" 'BEGIN { printf "%.2f", d / 5 }')" >>"$CHECKS"

    # --- 6. checks (untimed except the --detail run, which is listed apart) ------
    log "$N rows: checking totals"
    REF=${TOTAL[duckdb-${THREADS[0]}]}
    for key in "${!TOTAL[@]}"; do
        if [ "${TOTAL[$key]}" != "$REF" ]; then
            loud "$N rows: bare totals differ: duckdb-${THREADS[0]} gives '$REF' (fee total, purchases, groups), $key gives '${TOTAL[$key]}'"
        fi
    done
    read -r BARE_TOTAL BARE_ROWS BARE_GROUPS <<<"$REF"
    printf -- '- %s rows, bare aggregation: DuckDB and Polars (all thread counts) give fee total **%s** over %s purchases in %s (merchant, date) groups\n' \
        "$N" "$BARE_TOTAL" "$BARE_ROWS" "$BARE_GROUPS" >>"$CHECKS"

    TD=${THREADS[-1]}
    DETAIL=$RUNS/settle-$N-detail
    measure "$N" "settle --detail" "$TD" "$BYTES" "$RUNS/settle-$N-detail.log" "$DETAIL" \
        "$SETTLE" run --config "$CFG" --merchants "$MER" --transactions "$TXN" \
        --threads "$TD" --detail --stats --out "$DETAIL"
    "$PY" "$COMPARE" settle-total --detail "$DETAIL" >"$RUNS/settle-total-$N.log"
    S_TOTAL=$(jget "$RUNS/settle-total-$N.log" fee_total)
    S_ROWS=$(jget "$RUNS/settle-total-$N.log" purchases)
    "$PY" "$COMPARE" duckdb --rates "$RATES" --merchants "$MER" --transactions "$TXN" \
        --only-ids "$DETAIL" >"$RUNS/check-duckdb-$N.log" 2>&1 ||
        { cat "$RUNS/check-duckdb-$N.log" >&2; exit 1; }
    "$PY" "$COMPARE" polars --rates "$RATES" --merchants "$MER" --transactions "$TXN" \
        --only-ids "$DETAIL" >"$RUNS/check-polars-$N.log" 2>&1 ||
        { cat "$RUNS/check-polars-$N.log" >&2; exit 1; }
    D_TOTAL=$(jget "$RUNS/check-duckdb-$N.log" fee_total)
    D_ROWS=$(jget "$RUNS/check-duckdb-$N.log" purchases)
    P_TOTAL=$(jget "$RUNS/check-polars-$N.log" fee_total)
    P_ROWS=$(jget "$RUNS/check-polars-$N.log" purchases)
    ROW_MIS=$(jget "$RUNS/check-duckdb-$N.log" row_mismatches)
    GROUP_MIS=$(jget "$RUNS/check-duckdb-$N.log" group_mismatches)
    if [ "$S_TOTAL" != "$D_TOTAL" ] || [ "$S_TOTAL" != "$P_TOTAL" ] ||
        [ "$S_ROWS" != "$D_ROWS" ] || [ "$S_ROWS" != "$P_ROWS" ]; then
        loud "$N rows: over the purchases settle charged, settle gives $S_TOTAL ($S_ROWS rows), DuckDB $D_TOTAL ($D_ROWS rows), Polars $P_TOTAL ($P_ROWS rows)"
    fi
    if [ "$ROW_MIS" != 0 ] || [ "$GROUP_MIS" != 0 ]; then
        loud "$N rows: $ROW_MIS purchases and $GROUP_MIS (merchant, date) groups have a different fee in DuckDB than in settle's fees-*.csv; e.g. $(jget "$RUNS/check-duckdb-$N.log" examples)"
    fi
    printf -- '- %s rows, over the %s purchases settle charged (status charged or capped in `fees-*.csv`): settle **%s**, DuckDB **%s**, Polars **%s**; per purchase and per (merchant, date), DuckDB differs from settle in %s and %s places\n' \
        "$N" "$S_ROWS" "$S_TOTAL" "$D_TOTAL" "$P_TOTAL" "$ROW_MIS" "$GROUP_MIS" >>"$CHECKS"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$DETAIL"
    unset TOTAL
done

# --- 7. the report --------------------------------------------------------------
{
    echo "# settle vs DuckDB vs Polars: per-merchant, per-day purchase fees"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), \`scripts/bench.sh ${SIZES[*]}\`"
    echo
    echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(uname -sr)"
    echo "- settle $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)'), $(rustc --version 2>/dev/null || echo 'rustc ?'); $("$PY" -c 'import duckdb, polars, sys; print(f"duckdb {duckdb.__version__}, polars {polars.__version__}, python {sys.version.split()[0]}")')"
    echo "- data: \`settle gen --merchants $MERCHANTS --rows N --days $DAYS --seed $SEED\` (about 0.1 % bad rows); MB/s is transactions.csv bytes / wall; warm page cache"
    echo "- wall, peak RSS and CPU time (user + system, all threads) from \`/usr/bin/time -f '%e %M %U %S'\`, one process per run, Python start-up and imports included for DuckDB and Polars; the median of $REPEAT run(s) (BENCH_REPEAT); commands run from the repository root"
    echo "- vs DuckDB = DuckDB's wall / the tool's wall, at the same thread count (above 1 is faster than DuckDB)"
    echo "- DuckDB and Polars run only the bare aggregation (purchase rows with a valid amount, joined to the merchant's MCC and the flat rate table, fee rounded half up and capped, summed per merchant and day, the result written as CSV); settle runs its whole pipeline (validation of every row, duplicates, refund/void linking, deposits, deactivation, carry, conservation check, control.json with input digests, atomic publish); \`settle --detail\` also writes every accepted row to fees-*.csv"
    echo
    "$PY" "$COMPARE" table "$TSV"
    echo "## Checks"
    echo
    cat "$CHECKS"
    echo
    echo "## Commands"
    cat "$COMMANDS"
    echo
    echo "## settle --stats"
    cat "$STATS"
} >"$REPORT"

echo
"$PY" "$COMPARE" table "$TSV"
echo "## Checks"
echo
cat "$CHECKS"
echo
echo "report: $REPORT"
if [ "$FAIL" != 0 ]; then
    echo "bench: CHECKS FAILED (see above)" >&2
    exit 1
fi
