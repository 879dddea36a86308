#!/usr/bin/env bash
# The built tracer starts on this kernel far enough to print its version.
# budget: 20 (provisional)
set -eu
bin=build/bizprobe
[ -x "$bin" ] || { echo "$bin not built (make all)"; exit 77; }
"$bin" --version
