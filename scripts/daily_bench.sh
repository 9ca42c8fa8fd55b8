#!/usr/bin/env bash
# The daily-operation benchmark of docs/STATE.md: an acquirer with 100k
# merchants and about 333k transactions a day runs `settle` once a day with
# --state-in for DAYS days (default 180, so the last run starts from an
# index of about 60M purchases), then times the last days' runs again.
#
#   scripts/daily_bench.sh [DAYS] [ROWS_PER_DAY] [MERCHANTS]
#
# Needs a release build (cargo build --release) and about 12 GB of disk
# under bench-data/daily/. Prints one line per run (wall seconds, rows,
# bytes the run wrote) and a summary of the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

days=${1:-180}
per_day=${2:-333333}
merchants=${3:-100000}
bin=${SETTLE_BIN:-target/release/settle}
root=bench-data/daily
rows=$((days * per_day))

mkdir -p "$root"
if [ ! -f "$root/gen/transactions.csv" ] || [ "$(cat "$root/gen/rows" 2>/dev/null)" != "$rows" ]; then
  rm -rf "$root/gen" "$root/days"
  echo "== generating $rows rows over $days days"
  "$bin" gen --merchants "$merchants" --rows "$rows" --days "$days" --seed 7 --out "$root/gen"
  echo "$rows" > "$root/gen/rows"
fi
if [ ! -d "$root/days" ]; then
  echo "== splitting by business date"
  mkdir -p "$root/days"
  # Rows go to the file of their ts date (timestamps are +08:00, the
  # configured zone); a row with no readable date stays with the day before.
  awk -F, -v dir="$root/days" '
    NR == 1 { header = $0; next }
    {
      d = substr($3, 1, 10)
      if (d !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/) d = last
      if (!(d in seen)) { seen[d] = 1; print header > (dir "/" d ".csv") }
      print >> (dir "/" d ".csv")
      last = d
    }' "$root/gen/transactions.csv"
fi

rm -rf "$root/runs"
mkdir -p "$root/runs"
prev=""
n=0
printf "%-12s %8s %10s %12s %12s\n" day wall_s rows written_bytes state_bytes
for file in $(ls "$root/days"/*.csv | sort); do
  day=$(basename "$file" .csv)
  n=$((n + 1))
  out="$root/runs/$day"
  state=()
  [ -n "$prev" ] && state=(--state-in "$prev")
  start=$(date +%s.%N)
  "$bin" run --config "$root/gen/settle.toml" --merchants "$root/gen/merchants.csv" \
    --transactions "$file" "${state[@]}" --out "$out" 2> "$root/runs/$day.log"
  end=$(date +%s.%N)
  # Bytes this run wrote: files with one link are its own; hard-linked
  # segments came from earlier runs.
  written=$(find "$out" -type f -links 1 -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  state_bytes=$(du -sbL "$out/state" | cut -f1)
  printf "%-12s %8.2f %10s %12s %12s\n" "$day" "$(echo "$end - $start" | bc)" \
    "$(($(wc -l < "$file") - 1))" "$written" "$state_bytes"
  prev="$out"
done

echo "== the last run again, three times, with --stats"
last_file=$(ls "$root/days"/*.csv | sort | tail -1)
before=$(ls -d "$root/runs"/* | grep -v '\.log$' | sort | tail -2 | head -1)
for i in 1 2 3; do
  rm -rf "$root/rerun"
  /usr/bin/time -f "wall %e s, peak RSS %M KB" "$bin" run --config "$root/gen/settle.toml" \
    --merchants "$root/gen/merchants.csv" --transactions "$last_file" \
    --state-in "$before" --stats --out "$root/rerun" 2>&1 | grep -E "wall|stage|index|link|parse|state|publish|rows/s" || true
done
# A re-run from the same state gives the same bytes (idempotence).
diff -r "$root/rerun" "$(ls -d "$root/runs"/* | grep -v '\.log$' | sort | tail -1)" \
  -x control.json && echo "re-run: identical files (control.json aside: it holds --stats timings)"
grep -o '"entries": [0-9]*' "$before/state/manifest" | awk '{s += $2} END {print "index entries in the starting state:", s}'
du -sbL "$before/state" | awk '{print "starting state bytes:", $1}'
