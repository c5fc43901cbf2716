#!/usr/bin/env bash
# Compile cost of duraflow's macros (issue 15): a generated crate with 100 `#[activity]` and
# 20 `#[workflow]` fns, and its twin with the same fns without the macros (plain async fns, the
# workflows calling the activity fns directly). Both depend on duraflow by path and build in the
# repository's target folder (dev profile), so duraflow and its dependencies are built once and
# only the generated crate is timed.
#
# Usage: bench/compile-cost.sh [RUNS]    (default 3; prints one JSON line, progress on stderr)
# Figures: `build_ms` = `cargo build` of the crate alone after its source changed (its
# dependencies built); `check_ms` = `cargo check` likewise. The median of RUNS, for each crate.
set -euo pipefail
RUNS=${1:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
WORK=$(mktemp -d /tmp/duraflow-compile-cost.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
say() { printf '[compile-cost] %s\n' "$*" >&2; }

gen() { # gen DIR NAME MACROS(1|0)
  local dir=$1 name=$2 macros=$3
  mkdir -p "$dir/src"
  cat > "$dir/Cargo.toml" <<TOML
[package]
name = "$name"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
duraflow = { path = "$REPO" }
serde = { version = "1", features = ["derive"] }

[workspace]
TOML
  cp "$REPO/Cargo.lock" "$dir/Cargo.lock"
  {
    echo "#![allow(dead_code, unused_mut, clippy::all)]"
    echo "use duraflow::prelude::*;"
    for i in $(seq 0 99); do
      [ "$macros" = 1 ] && echo "#[activity]"
      echo "pub async fn act_$i(x: i64) -> Result<i64, ActivityError> { Ok(x + $i) }"
    done
    for w in $(seq 0 19); do
      [ "$macros" = 1 ] && echo "#[workflow]"
      echo "pub async fn wf_$w(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {"
      echo "    let mut v = x;"
      for k in $(seq 0 4); do
        local a=$(( (w * 5 + k) % 100 ))
        if [ "$macros" = 1 ]; then
          echo "    v = ctx.activity(act_$a, v).await?;"
        else
          echo "    let _ = &ctx; v = act_$a(v).await?;"
        fi
      done
      echo "    Ok(v)"
      echo "}"
    done
  } > "$dir/src/lib.rs"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms_of() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }

gen "$WORK/with" df_cc_macros 1
gen "$WORK/without" df_cc_plain 0
for c in with without; do
  say "warming up ($c): building duraflow and its dependencies if needed"
  (cd "$WORK/$c" && cargo build -q && cargo check -q) >&2
done
declare -A BUILD CHECK
for c in with without; do
  b=(); k=()
  for r in $(seq 1 "$RUNS"); do
    touch "$WORK/$c/src/lib.rs"
    b+=("$(cd "$WORK/$c" && ms_of cargo build -q)")
    touch "$WORK/$c/src/lib.rs"
    k+=("$(cd "$WORK/$c" && ms_of cargo check -q)")
  done
  BUILD[$c]=$(printf '%s\n' "${b[@]}" | median)
  CHECK[$c]=$(printf '%s\n' "${k[@]}" | median)
  say "$c macros: build ${b[*]} ms, check ${k[*]} ms"
done
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
printf '{"workload":"compile-cost","activities":100,"workflows":20,"runs":%s,"build_ms_macros":%s,"build_ms_plain":%s,"check_ms_macros":%s,"check_ms_plain":%s,"build_ratio":%s,"check_ratio":%s,"load":"%s"}\n' \
  "$RUNS" "${BUILD[with]}" "${BUILD[without]}" "${CHECK[with]}" "${CHECK[without]}" \
  "$(awk "BEGIN{printf \"%.2f\", ${BUILD[with]}/${BUILD[without]}}")" \
  "$(awk "BEGIN{printf \"%.2f\", ${CHECK[with]}/${CHECK[without]}}")" "$LOAD"
