#!/usr/bin/env bash
# Non-editable install check: build the wheel from a clean copy of the checkout, install it into a
# fresh venv (no system site-packages) and, from a folder outside the checkout, train 20 steps with
# ctcocr-train and read a few images with ctcocr-predict. Fails (exit 1, "wheel smoke: FAIL: ...")
# when the wheel lacks a package file, the package resolves through the source tree, or a command
# fails. Run by `make test-wheel` and by .ci/run. PYTHON picks the interpreter of the fresh venv;
# WHEEL_SMOKE_KEEP=1 keeps the temporary folder.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP VIRTUAL_ENV

fail() {
    echo "wheel smoke: FAIL: $*" >&2
    exit 1
}
step() { echo "== wheel smoke [${SECONDS}s]: $*"; }
# on failure: the last lines of a command's log, then the message
fail_log() {
    local log=$1
    shift
    echo "---- last lines of $log ----" >&2
    tail -n 60 "$log" >&2 || true
    echo "----" >&2
    fail "$@"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctcocr-wheel-smoke.XXXXXX")
cleanup() {
    if [[ -n ${WHEEL_SMOKE_KEEP:-} ]]; then
        echo "wheel smoke: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
SECONDS=0

# 1. a clean copy: the files a fresh clone would hold (tracked, or untracked and not ignored), so no
#    build/, *.egg-info, .venv or stale build output of the working tree can reach the wheel
step "copying the checkout to $WORK/src"
git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || fail "$ROOT is not a git checkout (the clean copy lists its files with git ls-files)"
mkdir "$WORK/src"
(
    cd "$ROOT"
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' file; do
            # a file deleted in the working tree but still in the index is not copied
            if [[ -e $file || -L $file ]]; then printf '%s\0' "$file"; fi
        done \
        | tar --null --files-from=- -cf - \
        | tar -xf - -C "$WORK/src"
) || fail "could not copy the checkout"
[[ -f $WORK/src/pyproject.toml ]] || fail "the clean copy has no pyproject.toml"

# 2. a fresh venv; its pip builds the wheel (in an isolated build environment) and installs it
step "creating a fresh venv with $PYTHON"
"$PYTHON" -m venv "$WORK/venv" || fail "$PYTHON -m venv failed"
grep -qx 'include-system-site-packages = false' "$WORK/venv/pyvenv.cfg" \
    || fail "the venv sees the system site-packages ($WORK/venv/pyvenv.cfg)"
VPY=$WORK/venv/bin/python
BIN=$WORK/venv/bin

step "building the wheel"
"$VPY" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 \
    || fail_log "$WORK/build.log" "pip wheel failed"
shopt -s nullglob
wheels=("$WORK"/dist/ctcocr-*.whl)
shopt -u nullglob
((${#wheels[@]} == 1)) || fail "expected one ctcocr wheel in $WORK/dist, found: ${wheels[*]:-none}"
WHEEL=${wheels[0]}
echo "built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

# every file of the package in the source tree (modules, configs, fonts, word list) is in the wheel
"$VPY" - "$WHEEL" "$WORK/src/src/ctcocr" <<'EOF' || fail "the wheel lacks package files (see [tool.setuptools.package-data] in pyproject.toml)"
import sys
import zipfile
from pathlib import Path

wheel, package = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
expected = {
    "ctcocr/" + path.relative_to(package).as_posix()
    for path in package.rglob("*")
    if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
}
missing = sorted(expected - names)
for name in missing:
    print(f"not in the wheel: {name}", file=sys.stderr)
configs = sum(name.startswith("ctcocr/configs/") for name in names)
fonts = sum(name.startswith("ctcocr/resources/fonts/") for name in names)
print(f"wheel: {len(names)} files, {len(expected)} package files of the source tree all present"
      if not missing else f"{len(missing)} of {len(expected)} package files missing",
      f"({configs} config files, {fonts} font files)")
sys.exit(1 if missing or not expected else 0)
EOF

step "installing the wheel into the fresh venv (-c constraints.txt)"
"$VPY" -m pip install --quiet --no-compile --constraint "$WORK/src/constraints.txt" "$WHEEL" \
    >"$WORK/install.log" 2>&1 || fail_log "$WORK/install.log" "pip install of the wheel failed"
"$VPY" -m pip check >"$WORK/check.log" 2>&1 || fail_log "$WORK/check.log" "pip check: broken dependencies"

# 3. from folders outside the checkout, so nothing resolves through the source tree
mkdir "$WORK/train" "$WORK/predict"
cd "$WORK/train"
step "checking that ctcocr and its package data resolve into the venv's site-packages"
"$VPY" - <<'EOF' || fail "ctcocr does not resolve into the venv's site-packages"
import sys
import sysconfig
from pathlib import Path

import ctcocr
from ctcocr import resources

site = Path(sysconfig.get_paths()["purelib"]).resolve()
print("ctcocr:", ctcocr.__file__)
checks = {
    "ctcocr": Path(ctcocr.__file__),
    "CONFIG_DIR": Path(resources.CONFIG_DIR) / "train.yaml",
    "FONT_DIR": Path(resources.FONT_DIR),
    "WORDS_FILE": Path(resources.WORDS_FILE),
    "CORPUS_FILE": Path(resources.CORPUS_FILE),
}
bad = False
for name, path in checks.items():
    path = path.resolve()
    if not path.is_relative_to(site) or not path.exists():
        print(f"{name} -> {path}: not an existing path under {site}", file=sys.stderr)
        bad = True
if not any(Path(resources.FONT_DIR).glob("*.[ot]tf")):
    print(f"no fonts in {resources.FONT_DIR}", file=sys.stderr)
    bad = True
sys.exit(1 if bad else 0)
EOF
for command in ctcocr-train ctcocr-predict ctcocr-eval ctcocr-export ctcocr-report; do
    [[ -x $BIN/$command ]] || fail "the wheel installed no $command script"
done

step "ctcocr-train: 20 steps on data=tiny (log: $WORK/train.log)"
"$BIN/ctcocr-train" data=tiny trainer.precision=32-true trainer.max_steps=20 \
    trainer.val_check_interval=10 trainer.limit_val_batches=1 trainer.num_sanity_val_steps=0 \
    trainer.log_every_n_steps=2 model.hidden_size=16 "model.backbone.channels=[4,4,8,8,8]" \
    extras.print_config=false hydra.run.dir=run \
    >"$WORK/train.log" 2>&1 || fail_log "$WORK/train.log" "ctcocr-train failed in the clean venv"
CKPT=$WORK/train/run/checkpoints/last.ckpt
[[ -f $CKPT ]] || fail_log "$WORK/train.log" "ctcocr-train wrote no $CKPT"
[[ -f run/test/metrics.json ]] || fail_log "$WORK/train.log" "ctcocr-train wrote no run/test/metrics.json"
[[ $(ls -A) == run ]] || fail "ctcocr-train wrote outside hydra.run.dir=run: $(ls -A | tr '\n' ' ')"
grep -A3 '^test metrics' "$WORK/train.log" || true

step "ctcocr-predict on three PNG lines (log: $WORK/predict.log)"
cd "$WORK/predict"
"$VPY" - <<'EOF' || fail "could not write the test images"
from pathlib import Path

from PIL import Image, ImageDraw

folder = Path("images")
(folder / "sub").mkdir(parents=True)
for name, text in [("hello.png", "hello"), ("world.png", "world 42"), ("sub/line.png", "a line")]:
    image = Image.new("L", (24 + 9 * len(text), 32), 255)
    ImageDraw.Draw(image).text((8, 10), text, fill=0)
    image.save(folder / name)
EOF
before=$(ls -A)
"$BIN/ctcocr-predict" "ckpt_path=$CKPT" inputs=images >"$WORK/predict.tsv" 2>"$WORK/predict.log" \
    || fail_log "$WORK/predict.log" "ctcocr-predict failed in the clean venv"
[[ ! -e logs ]] || fail "ctcocr-predict created a logs/ folder in its working directory"
after=$(ls -A)
[[ $after == "$before" ]] || fail "ctcocr-predict wrote to its working directory: $(echo "$after" | tr '\n' ' ')"
"$VPY" - "$WORK/predict.tsv" <<'EOF' || fail_log "$WORK/predict.log" "ctcocr-predict's stdout is not one TSV line (path, text, confidence) per image"
import sys
from pathlib import Path

lines = Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()
images = {path.resolve() for path in Path("images").rglob("*.png")}
print("\n".join(lines))
rows = [line.split("\t") for line in lines]
assert len(rows) == len(images) == 3, f"{len(rows)} lines for {len(images)} images"
assert all(len(row) == 3 for row in rows), "a line without exactly 3 tab-separated fields"
assert {Path(row[0]).resolve() for row in rows} == images, "the paths are not the images'"
assert all(0.0 <= float(row[2]) <= 1.0 for row in rows), "a confidence outside [0, 1]"
EOF

step "OK: the wheel installs into a clean venv; ctcocr-train and ctcocr-predict work from it"
