# bizprobe build: BPF CO-RE object -> skeleton -> userspace objects -> build/bizprobe.
# `make V=1` prints the commands.

OUT := build
BPF_CLANG ?= clang
CC ?= cc
BPFTOOL ?= bpftool
ARCH := x86

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKGS := libbpf libelf zlib libmicrohttpd libcrypto yaml-0.1 libcurl json-c sqlite3
# llhttp, Node.js's own HTTP/1.1 parser: Debian's node-llhttp ships it as C sources (for packages
# that build it in, as Debian's nodejs does), so it is compiled here into build/llhttp/.
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
LLHTTP_LIB := $(OUT)/llhttp/libllhttp.a
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
	-Iinclude -I$(OUT)/include -I$(LLHTTP_INC) $(shell pkg-config --cflags $(PKGS))
LDLIBS += $(LLHTTP_LIB) $(shell pkg-config --libs $(PKGS)) -lm

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -Iinclude -Ibpf \
	-Wall -Werror -Wno-unused-function

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUT)/include/%.skel.h,$(BPF_SRCS))

# Every stage's sources; src/cli/ holds main() and is linked only into the executable.
LIB_SRCS := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(patsubst src/%.c,$(OUT)/obj/%.o,$(LIB_SRCS))
CLI_OBJS := $(patsubst src/%.c,$(OUT)/obj/%.o,$(CLI_SRCS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))

.PHONY: all clean deps test unit-tests asan-tests fuzzers fuzz demo vmtest bench pipeline-bench \
	state-bench format vmlinux

all: $(OUT)/bizprobe

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) include/bizprobe/capture_event.h vmlinux/$(ARCH)/vmlinux.h
	$(call msg,BPF,$@)
	@mkdir -p $(dir $@)
	$(Q)$(BPF_CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/include/%.skel.h: $(OUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	@mkdir -p $(dir $@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# Userspace objects depend on the skeletons so that a BPF change rebuilds the loader.
$(OUT)/obj/%.o: src/%.c $(SKELS) $(wildcard include/bizprobe/*.h) $(wildcard src/*/*.h)
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The status page's HTML, CSS and JS are built into this object with .incbin (status_assets.c).
STATUS_ASSETS := $(wildcard src/export/status_page/*)
$(OUT)/obj/export/status_assets.o $(OUT)/asan/obj/export/status_assets.o \
	$(OUT)/fuzz/obj/export/status_assets.o: $(STATUS_ASSETS)

# Not our code: built without our warning flags, the way its own build does (-O2; no -msse4.2,
# which would tie the binary to CPUs that have it).
LLHTTP_OBJS := $(patsubst %,$(OUT)/llhttp/%.o,llhttp api http)

$(OUT)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -O2 -g -I$(LLHTTP_INC) -c $< -o $@

$(LLHTTP_LIB): $(LLHTTP_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Whatever links libbizprobe.a links llhttp too (LDLIBS): building one builds the other.
$(OUT)/libbizprobe.a: $(LIB_OBJS) | $(LLHTTP_LIB)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $(LIB_OBJS)

$(OUT)/bizprobe: $(CLI_OBJS) $(OUT)/libbizprobe.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/%: tests/unit/%.c $(OUT)/libbizprobe.a $(wildcard tests/unit/*.h)
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(OUT)/libbizprobe.a $(LDLIBS) -lcmocka -o $@

# Forces malloc failures in the HTTP stage through its own calloc (tests/unit/test_http_memory.c).
$(OUT)/tests/test_http_memory: LDLIBS += -Wl,--wrap=calloc

# Userspace microbenchmark of the HTTP and Stripe stages (bench/pipeline_bench.c). Built with the
# unit tests so that it keeps compiling; only `make pipeline-bench` runs it.
PIPELINE_BENCH := $(OUT)/bench/pipeline_bench

$(PIPELINE_BENCH): bench/pipeline_bench.c tests/unit/stripe_sign.h $(OUT)/libbizprobe.a
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $< $(OUT)/libbizprobe.a $(LDLIBS) -o $@

# The state store at 1M users and 10M events (bench/state_bench.c): compiled with the unit
# tests so that it keeps compiling; only `make state-bench` runs it (minutes, ~200 MB in build/).
STATE_BENCH := $(OUT)/bench/state_bench

$(STATE_BENCH): bench/state_bench.c $(OUT)/libbizprobe.a
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -Isrc/state $< $(OUT)/libbizprobe.a $(LDLIBS) -o $@

# The kube API pod cache's driver for tests/integration/test_k8s_api.py (issue 19).
K8S_PODS_TOOL := $(OUT)/tests/k8s_pods_tool

$(K8S_PODS_TOOL): tests/k8s/k8s_pods_tool.c $(OUT)/libbizprobe.a
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $< $(OUT)/libbizprobe.a $(LDLIBS) -o $@

unit-tests: $(K8S_PODS_TOOL)

unit-tests: $(UNIT_BINS) $(PIPELINE_BENCH) $(STATE_BENCH)

# ---- The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer (build/asan/):
# every library object rebuilt with the sanitizers, so that what a test drives is checked, not
# only the test. Any report stops the test (-fno-sanitize-recover). run-tests.sh runs them.
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_OUT := $(OUT)/asan
ASAN_LIB_OBJS := $(patsubst src/%.c,$(ASAN_OUT)/obj/%.o,$(LIB_SRCS))
ASAN_UNIT_BINS := $(patsubst tests/unit/%.c,$(ASAN_OUT)/tests/%,$(UNIT_SRCS))

$(ASAN_OUT)/obj/%.o: src/%.c $(SKELS) $(wildcard include/bizprobe/*.h) $(wildcard src/*/*.h)
	$(call msg,CC-SAN,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(ASAN_OUT)/libbizprobe.a: $(ASAN_LIB_OBJS) | $(LLHTTP_LIB)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $(ASAN_LIB_OBJS)

$(ASAN_OUT)/tests/%: tests/unit/%.c $(ASAN_OUT)/libbizprobe.a $(wildcard tests/unit/*.h)
	$(call msg,CC-SAN,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -Itests/unit $< $(ASAN_OUT)/libbizprobe.a $(LDLIBS) \
		-lcmocka -o $@

$(ASAN_OUT)/tests/test_http_memory: LDLIBS += -Wl,--wrap=calloc

asan-tests: $(ASAN_UNIT_BINS)

# ---- libFuzzer harnesses (tests/fuzz/fuzz_*.c, seeds in tests/fuzz/corpus/<harness>/), built
# with clang (Debian's clang 14 and libclang-rt-14-dev) into build/fuzz/. `make fuzz FUZZ_S=N`
# runs each for N seconds (scripts/fuzz.sh); run-tests.sh runs a short smoke of each.
FUZZ_CC ?= clang
FUZZ_S ?= 60
# Warnings do not stop this build: gcc's build is the warning gate, and clang 14 warns of code
# gcc accepts (designated-initializer tables, concatenated SQL literals).
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all -Wno-error
FUZZ_OUT := $(OUT)/fuzz
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(patsubst tests/fuzz/%.c,$(FUZZ_OUT)/%,$(FUZZ_SRCS))
FUZZ_LIB_OBJS := $(patsubst src/%.c,$(FUZZ_OUT)/obj/%.o,$(LIB_SRCS))

$(FUZZ_OUT)/obj/%.o: src/%.c $(SKELS) $(wildcard include/bizprobe/*.h) $(wildcard src/*/*.h)
	$(call msg,CC-FUZZ,$@)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# llhttp again with the fuzzer's coverage and the sanitizers: its states guide the fuzzing of
# the HTTP stage's callbacks.
FUZZ_LLHTTP_LIB := $(FUZZ_OUT)/llhttp/libllhttp.a
FUZZ_LLHTTP_OBJS := $(patsubst %,$(FUZZ_OUT)/llhttp/%.o,llhttp api http)

$(FUZZ_OUT)/libbizprobe.a: $(FUZZ_LIB_OBJS) | $(FUZZ_LLHTTP_LIB)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $(FUZZ_LIB_OBJS)

$(FUZZ_OUT)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	$(call msg,CC-FUZZ,$@)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -I$(LLHTTP_INC) -c $< -o $@

$(FUZZ_LLHTTP_LIB): $(FUZZ_LLHTTP_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_OUT)/%: tests/fuzz/%.c $(FUZZ_OUT)/libbizprobe.a tests/fuzz/fuzz_util.h
	$(call msg,FUZZER,$@)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -Itests/fuzz $< \
		$(FUZZ_OUT)/libbizprobe.a $(FUZZ_LLHTTP_LIB) $(filter-out $(LLHTTP_LIB),$(LDLIBS)) -o $@

fuzzers: $(FUZZERS)

fuzz: $(FUZZERS)
	scripts/fuzz.sh $(FUZZ_S)

pipeline-bench: $(PIPELINE_BENCH)
	$(PIPELINE_BENCH)

state-bench: $(STATE_BENCH)
	$(STATE_BENCH) $(OUT)/state-bench

deps:
	scripts/deps.sh

# The commands the README promises install what is missing first (scripts/deps.sh: seconds when
# everything is there), then build in a second make, so that pkg-config and the compilers it
# calls exist by the time the build needs them, also under -j.
BUILD = $(MAKE) --no-print-directory

# The whole suite: unit, integration with real traced programs, end to end, VM kernel matrix.
test: deps
	$(Q)$(BUILD) all unit-tests asan-tests fuzzers
	scripts/run-tests.sh

demo: deps
	$(Q)$(BUILD) all
	scripts/demo.sh

vmtest: deps
	$(Q)$(BUILD) all
	scripts/vmtest.sh

bench: deps
	$(Q)$(BUILD) all
	bench/run.sh

vmlinux:
	scripts/gen-vmlinux.sh

format:
	clang-format -i $(wildcard bpf/*.c bpf/*.h src/*/*.c src/*/*.h include/bizprobe/*.h tests/unit/*.c)

clean:
	rm -rf $(OUT)

.DELETE_ON_ERROR:
.SECONDARY:
