#!/usr/bin/env bash
# difftest.sh SETTLE_BIN N_SEEDS [FIRST_SEED]
#
# For each seed: gen_cases.py writes a case, the oracle and `SETTLE_BIN run` each
# settle it into their own folder, and the two are compared: exit codes, the set
# of settlement files and their bytes, rejects.csv without its detail column, and
# (where the engine wrote control.json) the section 3.7 totals. Prints the first
# differences per seed and a final line `N passed, M failed`; exits 1 on any
# difference. Cases live under $DIFFTEST_DIR (default: a fresh
# /tmp/settle-difftest.XXXXXX, so that runs side by side do not collide), one
# folder per seed; passing ones are removed unless KEEP_PASSING=1.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 SETTLE_BIN N_SEEDS [FIRST_SEED]" >&2
  exit 2
fi
settle_bin=$(realpath "$1") || exit 2
n_seeds=$2
first_seed=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
root=${DIFFTEST_DIR:-$(mktemp -d /tmp/settle-difftest.XXXXXX)}
mkdir -p "$root"
echo "cases under $root"

passed=0
failed=0
for ((seed = first_seed; seed < first_seed + n_seeds; seed++)); do
  dir="$root/case-$seed"
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 "$here/gen_cases.py" --seed "$seed" --out "$dir/in" || { echo "seed $seed: gen_cases failed"; exit 2; }
  (
    cd "$dir/in" || exit 2
    flags=(--config settle.toml --merchants merchants.csv --transactions txns1.csv)
    [ -f txns2.csv ] && flags+=(txns2.csv)
    [ -f adjustments.csv ] && flags+=(--adjustments adjustments.csv)
    read -r -a extra < args
    flags+=("${extra[@]}")
    printf '%s\n' "${flags[*]}" > ../command
    timeout 120 python3 "$here/settle_oracle.py" run "${flags[@]}" --out ../oracle \
      > ../oracle.log 2>&1
    echo $? > ../oracle.rc
    timeout 120 "$settle_bin" run "${flags[@]}" --out ../settle > ../settle.log 2>&1
    echo $? > ../settle.rc
  )
  if python3 - "$dir" "$seed" <<'EOF'
import csv, difflib, io, json, os, sys

d, seed = sys.argv[1], sys.argv[2]
diffs = []
rc = {k: open(os.path.join(d, k + ".rc")).read().strip() for k in ("oracle", "settle")}
first_line = lambda k: (open(os.path.join(d, k + ".log"), errors="replace").read().strip()
                        .splitlines() or [""])[0][:200]
if rc["oracle"] != rc["settle"]:
    diffs.append(f"exit code: oracle {rc['oracle']}, settle {rc['settle']}")
    diffs.append(f"  oracle says: {first_line('oracle')}")
    diffs.append(f"  settle says: {first_line('settle')}")
elif rc["oracle"] != "0":
    out = os.path.join(d, "settle")
    if os.path.isdir(out) and os.listdir(out):
        diffs.append(f"settle exited {rc['settle']} but published {sorted(os.listdir(out))}")
else:
    o, s = os.path.join(d, "oracle"), os.path.join(d, "settle")
    files = lambda p: sorted(f for f in os.listdir(p) if f.startswith("settlement-"))
    fo, fs = files(o), files(s)
    for f in sorted(set(fo) ^ set(fs)):
        diffs.append(f"{f}: only written by {'oracle' if f in fo else 'settle'}")
    for f in sorted(set(fo) & set(fs)):
        a, b = (open(os.path.join(p, f), "rb").read() for p in (o, s))
        if a != b:
            lines = list(difflib.unified_diff(a.decode(errors="replace").splitlines(),
                                              b.decode(errors="replace").splitlines(),
                                              "oracle/" + f, "settle/" + f, n=0, lineterm=""))
            diffs += [f"{f} differs:"] + ["  " + x for x in lines[2:12]]

    def rejects(p):
        text = open(os.path.join(p, "rejects.csv"), "rb").read().decode(errors="replace")
        return [r[:4] for r in csv.reader(io.StringIO(text, newline=""))]
    try:
        ro, rs = rejects(o), rejects(s)
        if ro != rs:
            lines = list(difflib.unified_diff([",".join(r) for r in ro], [",".join(r) for r in rs],
                                              "oracle/rejects", "settle/rejects", n=0, lineterm=""))
            diffs += ["rejects.csv (without detail) differs:"] + ["  " + x for x in lines[2:14]]
    except OSError as e:
        diffs.append(f"rejects.csv: {e}")
    try:
        control = json.load(open(os.path.join(s, "control.json")))
        mine = json.load(open(os.path.join(o, "totals.json")))
        for k, v in mine["totals"].items():
            if control.get("totals", {}).get(k) != v:
                diffs.append(f"control.json totals.{k}: oracle {v}, settle "
                             f"{control.get('totals', {}).get(k)}")
        for k in ("start", "horizon"):
            if control.get("run", {}).get(k, mine["run"][k]) != mine["run"][k]:
                diffs.append(f"control.json run.{k}: oracle {mine['run'][k]}, "
                             f"settle {control['run'][k]}")
    except (OSError, ValueError) as e:
        diffs.append(f"control.json: {e}")
if diffs:
    print(f"seed {seed}: FAIL ({d}; command in {d}/command)")
    for x in diffs[:30]:
        print("  " + x)
    sys.exit(1)
EOF
  then
    passed=$((passed + 1))
    [ "${KEEP_PASSING:-0}" = 1 ] || rm -rf "$dir"
  else
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
