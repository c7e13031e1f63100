#!/usr/bin/env bash
# Builds a standalone RSC Studio with PyInstaller (one folder, Python and Qt inside):
#   packaging/build.sh classify   the classify-only edition: onnxruntime, no torch  -> dist/rsc-classify/
#   packaging/build.sh full       the full edition: the whole app with torch (CPU)    -> dist/rsc-studio/
# Each edition is built in its own virtual environment under build/ (made on first use), so the
# classify-only edition cannot pick torch up by accident: its environment does not have it.
set -euo pipefail
cd "$(dirname "$0")/.."

EDITION="${1:-classify}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"  # the same pin as dev.sh
VENV="build/venv-$EDITION"
APP_DEPS=("numpy>=2.1" "soundfile>=0.12" "soxr>=0.3.7" "sqlite-utils>=3.36" "onnxruntime>=1.17"
          "PySide6-Essentials>=6.6,<6.12" "pyqtgraph>=0.13.7" "sounddevice>=0.4.6" "pyinstaller>=6.5")
# Qt modules the app never loads; leaving them out keeps the folder smaller and the start faster.
EXCLUDES=(tkinter matplotlib scipy pandas IPython PySide6.QtWebEngineCore PySide6.QtQml PySide6.QtQuick
          PySide6.Qt3DCore PySide6.QtMultimedia PySide6.QtPdf PySide6.QtSql PySide6.QtTest)

case "$EDITION" in
  classify) NAME=rsc-classify; ENTRY=packaging/entry_classify.py
            EXCLUDES+=(torch transformers safetensors tqdm onnx onnxscript) ;;
  full)     NAME=rsc-studio; ENTRY=packaging/entry_full.py ;;
  *) echo "usage: packaging/build.sh classify|full" >&2; exit 2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  echo "Making the build environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  if [ "$EDITION" = full ]; then
    "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"
    "$VENV/bin/pip" install -q ".[app,classify,export]" "pyinstaller>=6.5"
  else
    "$VENV/bin/pip" install -q "${APP_DEPS[@]}"
  fi
fi
if [ "$EDITION" = classify ] && "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "$VENV has torch installed: the classify-only edition must be built without it" >&2
  exit 1
fi

args=(--noconfirm --clean --name "$NAME" --distpath dist --workpath "build/pyinstaller-$EDITION"
      --specpath "build/pyinstaller-$EDITION" --paths "$PWD" --add-data "$PWD/resources:resources"
      --collect-submodules trainer --collect-submodules rscapp --collect-data pyqtgraph)
for module in "${EXCLUDES[@]}"; do args+=(--exclude-module "$module"); done
if [ "$EDITION" = classify ]; then
  # trainer's modules that train or export import torch; the edition does not offer them.
  for module in trainer.train trainer.distill trainer.models trainer.jobs trainer.results trainer.infer.export \
                trainer.features.clap trainer.features.cache rscapp.train rscapp.compare; do
    args+=(--exclude-module "$module")
  done
fi
echo "Building dist/$NAME (PyInstaller, a few minutes)" >&2
PYTHONPATH="$PWD" "$VENV/bin/pyinstaller" "${args[@]}" "$ENTRY" >"build/pyinstaller-$EDITION.log" 2>&1 || {
  tail -30 "build/pyinstaller-$EDITION.log" >&2; exit 1; }
echo "Built dist/$NAME/$NAME ($(du -sh "dist/$NAME" | cut -f1)); the log is build/pyinstaller-$EDITION.log" >&2
