#!/usr/bin/env bash
# One GPU check: the CUDA-marked tests, then the Multi30k Transformer trained for a fixed number of
# minutes, written as JSON (GPU name, training tokens/s, peak GPU memory, greedy test BLEU).
#
#   benchmarks/gpu_check.sh [OUT] [MINUTES]
#     OUT      a .json file, or a folder to write gpu_check.json into (default: $OUT, else
#              benchmarks/results/gpu_check.json)
#     MINUTES  training budget (default: $GPU_CHECK_MINUTES, else 4); the whole script then takes
#              about MINUTES + 1.5 minutes on a GPU
#   GPU_CHECK_TINY=1   tiny model and step budget: the same path on a CPU in about a minute
#   PYTHON=...         the interpreter to use (default: python3); it must have torch (and, for the
#                      tests, pytest); nothing is installed and no network is used
#   GPU_CHECK_DATA=... folder holding multi30k/ (default: ../shared/corpora, else shared/corpora)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${1:-${OUT:-benchmarks/results/gpu_check.json}}
[[ -d "$DEST" || "$DEST" != *.json ]] && DEST="${DEST%/}/gpu_check.json"
MINUTES=${2:-${GPU_CHECK_MINUTES:-4}}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== interpreter: $(command -v "$PY")"
"$PY" - <<'PYEOF' || { echo "gpu_check: $PY has no usable torch; set PYTHON=/path/to/python"; exit 2; }
import torch
print(f"torch {torch.__version__}  CUDA build {torch.version.cuda}  available {torch.cuda.is_available()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}  {p.total_memory / 2**30:.0f} GiB")
PYEOF
for mod in numpy tokenizers safetensors sacrebleu typer rich yaml; do
    "$PY" -c "import $mod" 2>/dev/null || echo "gpu_check: warning: $PY lacks $mod (pip install -e . installs it)"
done

TESTS_RC=skipped
if "$PY" -c "import pytest" 2>/dev/null; then
    echo "== CUDA-marked tests"
    "$PY" -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py
    TESTS_RC=$?
else
    echo "gpu_check: no pytest in $PY: CUDA tests skipped"
fi

echo "== Multi30k Transformer, $MINUTES minutes"
DATA_ARGS=()
[[ -n "${GPU_CHECK_DATA:-}" ]] && DATA_ARGS=(--data-dir "$GPU_CHECK_DATA")
"$PY" -m benchmarks.gpu_check --out "$DEST" --minutes "$MINUTES" "${DATA_ARGS[@]}"
TRAIN_RC=$?
[[ -f "$DEST" ]] && "$PY" - "$DEST" "$TESTS_RC" <<'PYEOF'
import json, sys
path, rc = sys.argv[1], sys.argv[2]
report = json.loads(open(path).read())
report["cuda_tests_exit_code"] = None if rc == "skipped" else int(rc)
open(path, "w").write(json.dumps(report, indent=2) + "\n")
PYEOF
echo "== wrote $DEST (CUDA tests: $TESTS_RC, training: $TRAIN_RC)"
[[ "$TRAIN_RC" == 0 && ( "$TESTS_RC" == 0 || "$TESTS_RC" == skipped ) ]]
