#!/usr/bin/env bash
# The built tracer starts on this kernel far enough to print its version.
# budget: 10 (measured 0.6-1.2 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
bin=build/bizprobe
[ -x "$bin" ] || { echo "$bin not built (make all)"; exit 77; }
"$bin" --version
