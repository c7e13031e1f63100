#!/usr/bin/env bash
# Checks a built classify-only edition (packaging/build.sh classify) the way a newcomer would use it:
# a student distilled in the demo project is exported to ONNX with the development environment, then the
# built program (no torch inside) classifies a wav file that is in no project, writes its report, and
# gives the same probabilities as `rsc classify` from source; its window's start is timed.
#   packaging/check_build.sh [MODEL.onnx]     (without MODEL: trains one, about a minute on 2 cores)
# Prints one line per check and exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUNDLE=dist/rsc-classify/rsc-classify
DEV=.venv/bin
WORK="${CHECK_DIR:-build/check}"
[ -x "$BUNDLE" ] || { echo "no $BUNDLE: run packaging/build.sh classify first" >&2; exit 2; }
[ -x "$DEV/rsc" ] || { echo "no $DEV/rsc: run ./dev.sh setup first (it exports the model)" >&2; exit 2; }
mkdir -p "$WORK"
failed=0
check() {  # check NAME CONDITION-COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok    $name"; else echo "FAIL  $name"; failed=1; fi
}

MODEL="${1:-}"
if [ -z "$MODEL" ]; then
  MODEL="$WORK/student.onnx"
  rm -f "$WORK/demo.rsc"; rm -rf "$WORK/demo.rsc.d"
  "$DEV/python" -c "from trainer.data.demo import create_demo_project as c; c('$WORK/demo.rsc').close()"
  "$DEV/rsc" train "$WORK/demo.rsc" --arch cnn6-tiny --seeds 1-2 --epochs 3 --group teachers --quiet >/dev/null
  "$DEV/rsc" distill "$WORK/demo.rsc" --arch cnn6-tiny --teachers teachers --group students --epochs 3 --quiet >/dev/null
  student=$("$DEV/rsc" runs "$WORK/demo.rsc" --group students --status done | awk 'NR > 1 {print $1; exit}')
  "$DEV/rsc" export "$WORK/demo.rsc" "$student" "$MODEL" >/dev/null
fi
echo "model: $MODEL"

# A wav file in no project: a real ICBHI recording copied out, without its label file beside it.
AUDIO="$WORK/recording.wav"
cp "$(ls ../shared/data/icbhi/ICBHI_final_database/*.wav | head -1)" "$AUDIO"

check "the bundle holds no torch" test -z "$(find dist/rsc-classify -iname 'torch*' -print -quit)"
"$BUNDLE" classify "$MODEL" "$AUDIO" --json >"$WORK/bundle.json" 2>"$WORK/bundle.err"
check "the bundle classifies a wav file that is in no project" \
  "$DEV/python" -c "import json,sys; r=json.load(open('$WORK/bundle.json'))['recordings'][0]; sys.exit(not r['cycles'])"
"$DEV/rsc" classify "$MODEL" "$AUDIO" --json >"$WORK/source.json" 2>/dev/null
check "its probabilities equal those of rsc classify from source" "$DEV/python" - "$WORK/bundle.json" "$WORK/source.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["recordings"][0]["cycles"] for p in sys.argv[1:3])
sys.exit(not (len(a) == len(b) and all(abs(x["probabilities"][k] - y["probabilities"][k]) < 1e-5
                                       for x, y in zip(a, b) for k in x["probabilities"])))
PY
rm -rf "$WORK/report"
"$BUNDLE" classify "$MODEL" "$AUDIO" --report "$WORK/report" >/dev/null 2>&1
check "it writes the recording's HTML and CSV report" test -s "$WORK/report/recording.html" -a -s "$WORK/report/recording.csv"
"$BUNDLE" classify "$MODEL" "$WORK/missing.wav" >/dev/null 2>"$WORK/missing.err"
check "a missing file is one clear line" grep -q "missing.wav" "$WORK/missing.err"

# The time from launch until the window is shown and the program has exited again, best of 3.
best=$("$DEV/python" - "$BUNDLE" <<'PY'
import os, subprocess, sys, time
env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
times = []
for _ in range(3):
    start = time.perf_counter()
    done = subprocess.run([sys.argv[1], "--quit-after-start"], env=env, capture_output=True)
    times.append(time.perf_counter() - start if done.returncode == 0 else float("inf"))
print(f"{min(times):.2f}", " ".join(f"{t:.2f}" for t in times))
PY
)
echo "window start (s): best ${best%% *}, tries ${best#* }"
check "the window starts in at most 2 s" "$DEV/python" -c "import sys; sys.exit(not float('${best%% *}') <= 2.0)"
echo "classify-only edition: $(du -sh dist/rsc-classify | cut -f1)"

FULL=dist/rsc-studio/rsc-studio
if [ -x "$FULL" ] && [ -n "${student:-}" ]; then
  # The full edition (packaging/build.sh full): the same recording, classified by the torch run itself.
  "$FULL" classify "$WORK/demo.rsc:$student" "$AUDIO" --json >"$WORK/full.json" 2>/dev/null
  check "the full edition classifies with the run (torch) as the exported model does" \
    "$DEV/python" - "$WORK/full.json" "$WORK/bundle.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["recordings"][0]["cycles"] for p in sys.argv[1:3])
sys.exit(not (len(a) == len(b) and all(abs(x["probabilities"][k] - y["probabilities"][k]) < 1e-4
                                       for x, y in zip(a, b) for k in x["probabilities"])))
PY
  check "the full edition's app answers --version" "$FULL" --version
  echo "full edition: $(du -sh dist/rsc-studio | cut -f1)"
fi
exit $failed
