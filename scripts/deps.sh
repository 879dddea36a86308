#!/usr/bin/env bash
# Installs every build, test and demo dependency from Debian's packages (and the demo's npm lockfile).
# Idempotent: packages already present are not fetched again, so a second run costs a few seconds.
# Every program a script or test runs must come from here or from Debian's base system:
# scripts/check-deps.py checks that, as part of make test.
set -euo pipefail

BUILD_PKGS=(make gcc libc6-dev clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
	node-llhttp # llhttp's C sources: the HTTP/1.1 parser, compiled by the Makefile
	libmicrohttpd-dev libssl-dev libjsmn-dev libyaml-dev clang-format
	libcurl4-openssl-dev libjson-c-dev libsqlite3-dev
	libclang-rt-14-dev) # libFuzzer and clang's sanitizer runtimes (make fuzzers)
TEST_PKGS=(git libcmocka-dev curl python3 nodejs npm iproute2 openssl prometheus libcap2-bin procps
	binutils prometheus-alertmanager
	runc # runs the real containers of tests/integration/test_node_containers.py
	python3-yaml # tests/deploy/test_kubernetes.py parses the Kubernetes manifests
	chromium) # headless, drives the status page like a person (tests/integration/test_status_page.py)
# depmod (kmod) orders the guests' modules; xz and zstd unpack them where a kernel compresses them.
VM_PKGS=(qemu-system-x86 busybox-static cpio kmod xz-utils zstd)
BENCH_PKGS=(wrk bpftrace linux-perf nginx-light
	valgrind) # callgrind: deterministic instruction counts for bench/pipeline_bench

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${VM_PKGS[@]}" "${BENCH_PKGS[@]}")

missing=()
for p in "${want[@]}"; do
	# node may come from outside Debian on a developer machine; an existing binary is enough.
	case "$p" in
	nodejs) command -v node >/dev/null && continue ;;
	npm) command -v npm >/dev/null && continue ;;
	python3) [ -x /usr/bin/python3 ] && continue ;; # the tests use Debian's interpreter
	esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	echo "deps: all Debian packages present"
fi

# tracefs is where uprobe and tracepoint events live; some machines do not mount it.
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
fi
