# Sourced by the images/ scripts, from the repository root: what is built, where it goes, and
# what the images are labelled with. Everything here comes from the commit, not from the clock.
PROGRAMS=(tooken-server tooken-operator tooken-sidecar)
# One python for everything here, so the release workflow and CI can name the venv that holds
# helm-python-sdk.
PYTHON=${PYTHON:-python3}
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps --locked |
  "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
OUT=$TARGET_DIR/images
VERSION=$(cargo metadata --format-version 1 --no-deps --locked |
  "$PYTHON" -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "tooken-api-server"))')
REVISION=$(git rev-parse HEAD)
# Uncommitted changes to tracked files make the label say so rather than name a commit falsely.
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then REVISION=$REVISION-dirty; fi
# Not exported: cargo would rebuild everything for each new commit's time.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
SOURCE=$(sed -n 's/^home: //p' charts/tooken/Chart.yaml)
# This machine's Rust target and the image architecture it builds.
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
case $TRIPLE in
  x86_64-unknown-linux-gnu) ARCH=amd64 ;;
  aarch64-unknown-linux-gnu) ARCH=arm64 ;;
  *) ARCH=unsupported ;;
esac
