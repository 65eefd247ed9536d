#!/usr/bin/env bash
# Issue 27, item 1 on a GPU machine: the learning-gap variants over 1,000 steps, every variant in
# its own process at once (loss per step does not depend on the device, and a CPU run of this
# horizon takes hours per JoeyNMT variant). fp32 on both sides.
#
#   benchmarks/gpu_learning_gap.sh OUT_DIR [STEPS] [VALIDATE_EVERY]
#     OUT_DIR  gets gap-<variant>.json and .log, and every run's raw curve
#              (seq2attn metrics.jsonl, JoeyNMT validations.txt) even when a run did not finish
#   GAP_VARIANTS="a b c"  the variants (default: the RNN and Transformer sets below)
#   GAP_TINY=1            on a CPU, tiny: 20 steps on 300 pairs (the same path, for a dry run)
#   GAP_DATA=...          folder holding multi30k/ (default: ../shared/corpora)
#   GAP_JOEY_HOME=...     holds joeynmt-venv (default: build one from carried wheels, below)
#   GAP_TIMEOUT=SECONDS   each variant's limit (default 420)
#
# The GPU machine has no network: JoeyNMT 2.3.0 and what its image lacks travel as wheels in .whl/
# (pip download --no-deps --python-version 3.12 ... joeynmt==2.3.0 plotly==7.1.0 subword-nmt==0.3.8
# importlib_metadata==10.2.0 lazy_importer==0.1.0, and
# seq2attn's CLI needs: typer rich click shellingham pydantic pydantic_core annotated-types annotated-doc
# typing-inspection typing_extensions). They go to /tmp/site; a
# wrapper stands in for the venv's python, and the benchmark's shims are applied to that copy.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:?OUT_DIR}
STEPS=${2:-1000}
EVERY=${3:-100}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
DATA=${GAP_DATA:-../shared/corpora}
TIMEOUT=${GAP_TIMEOUT:-420}
DEVICE=cuda
LIMITS=()
if [[ -n "${GAP_TINY:-}" ]]; then
    DEVICE=cpu STEPS=20 EVERY=10 LIMITS=(--train-limit 300 --dev-limit 50)
fi
DEFAULT="s2a-rnn s2a-rnn-seed2 s2a-rnn-luong s2a-rnn-unbucketed joey-rnn joey-rnn-seed2 joey-rnn-emb01
s2a-transformer-ls0 s2a-transformer-ls0-seed2 joey-transformer-ls0 joey-transformer-ls0-seed2 joey-transformer-ls0-xavier"
VARIANTS=${GAP_VARIANTS:-$DEFAULT}

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ -z "${GAP_JOEY_HOME:-}" ]]; then
    GAP_JOEY_HOME=/tmp/joey-home
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "gpu_learning_gap: installing the wheels in .whl failed"; exit 3; }
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
    mkdir -p "$GAP_JOEY_HOME/joeynmt-venv/bin"
    printf '#!/bin/sh\nPYTHONPATH=/tmp/site exec %s "$@"\n' "$(command -v "$PY")" > "$GAP_JOEY_HOME/joeynmt-venv/bin/python"
    chmod +x "$GAP_JOEY_HOME/joeynmt-venv/bin/python"
    "$PY" -c "import sys; from pathlib import Path; from benchmarks import peer_joeynmt as j; j.finish_install(Path(sys.argv[1]))" \
        "$GAP_JOEY_HOME" || { echo "gpu_learning_gap: JoeyNMT is not usable"; exit 3; }
fi
JPY="$GAP_JOEY_HOME/joeynmt-venv/bin/python"
"$JPY" -c "import joeynmt.training, torch, sentencepiece; print('joeynmt ready, torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    || { echo "gpu_learning_gap: JoeyNMT does not import"; exit 3; }
"$PY" -m seq2attn --help > /dev/null || { echo "gpu_learning_gap: seq2attn's CLI does not run"; exit 3; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

echo "== $(date -u +%FT%TZ) variants: $VARIANTS; $STEPS steps, validation every $EVERY, device $DEVICE"
pids=()
for v in $VARIANTS; do
    timeout "$TIMEOUT" "$PY" -m benchmarks.learning_gap --device "$DEVICE" --data-dir "$DATA" --threads 1 \
        --steps "$STEPS" --validate-every "$EVERY" "${LIMITS[@]}" --variants "$v" --venv-home "$GAP_JOEY_HOME" \
        --work "/tmp/gap/$v" --out "$OUT_DIR/gap-$v.json" > "$OUT_DIR/gap-$v.log" 2>&1 &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
echo "== $(date -u +%FT%TZ) done (any failure: $rc)"
for v in $VARIANTS; do  # the raw curves, also of a run the timeout stopped
    for f in metrics.jsonl validations.txt train.log; do
        [[ -f "/tmp/gap/$v/$v/$f" ]] && cp "/tmp/gap/$v/$v/$f" "$OUT_DIR/raw-$v-$f"
    done
done
"$PY" -m benchmarks.learning_gap --report "$OUT_DIR"/gap-*.json 2>&1 || true
for v in $VARIANTS; do  # why a variant failed
    grep -q '"error"' "$OUT_DIR/gap-$v.json" 2>/dev/null && { echo "== $v failed:"; tail -n 8 "$OUT_DIR/gap-$v.log"; }
done
exit $rc
