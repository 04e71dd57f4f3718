# sdc - build everything into build/; `make test` runs the whole suite
# (regular build, then the same suite under ASan+UBSan).
CC      ?= cc
OPT     ?= -O3 -march=native
CFLAGS  += -std=c11 -Ibench -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -fopenmp -Iinclude -Isrc $(OPT) -g
LDLIBS  += -lopenblas -lcjson -lspng -lutf8proc -lmicrohttpd -lz -lm -lpthread
LDFLAGS += -fopenmp

SRC      := $(shell find src -name '*.c' | sort)
TOOL_SRC := $(shell find tools -name '*.c' | sort)
TEST_SRC := $(shell find tests -maxdepth 1 -name '*.c' | sort)

B ?= build
OBJ      := $(SRC:%.c=$(B)/obj/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(B)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(B)/obj/%.o)

# The CUDA backend (src/backend/cuda/*.cu, issue 8) is compiled by nvcc when
# it is found: CUDA=auto (default) turns it on then, CUDA=0 forces it off.
# auto also stays off in sanitizer builds (OPT with -fsanitize, e.g. `make
# asan`): nvcc objects carry no ASan instrumentation and the CUDA driver's
# address-space reservations clash with ASan's shadow memory. Off, nothing
# CUDA is compiled or linked and the CPU build is unchanged.
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA ?= auto
ifeq ($(CUDA),auto)
  ifneq ($(NVCC),)
    ifeq ($(findstring -fsanitize,$(OPT)),)
      override CUDA := 1
    endif
  endif
endif
CU_OBJ :=
ifeq ($(CUDA),emu)
  # The same .cu files built as C++ against the CPU emulator of a CUDA device
  # (tests/cuda_emu): `make cuda-emu`, no GPU or nvcc needed.
  CXX ?= g++
  CU_SRC := $(shell find src -name '*.cu' | sort)
  EMU_SRC := $(shell find tests/cuda_emu -name '*.cc' | sort)
  CU_OBJ := $(CU_SRC:%.cu=$(B)/obj/%.cu.o) $(EMU_SRC:%.cc=$(B)/obj/%.o)
  EMU_CXXFLAGS = -std=c++17 $(filter-out -march=native,$(OPT)) -g -ffp-contract=off -fno-strict-aliasing -Wall -Wextra \
                 -Wno-unused-parameter -Wno-unused-function -Wno-unknown-pragmas -Iinclude -Isrc -Itests/cuda_emu/include -DSDC_HAVE_CUDA -DSDC_HAVE_CUDNN
  CFLAGS += -DSDC_HAVE_CUDA
  LDLIBS += -lstdc++ -ldl
endif
ifeq ($(CUDA),1)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
  CU_SRC := $(shell find src -name '*.cu' | sort)
  CU_OBJ := $(CU_SRC:%.cu=$(B)/obj/%.cu.o)
  # machine code for Ampere and Hopper, PTX the driver compiles for newer GPUs
  NVCCFLAGS ?= -O3 -g -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
               -gencode arch=compute_90,code=compute_90 \
               -Xcompiler -fPIC,-Wall,-Wextra,-Wno-unused-parameter -Iinclude -Isrc -DSDC_HAVE_CUDA
  CFLAGS += -DSDC_HAVE_CUDA
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++ -ldl
  # cuDNN: only its header at build time (CUDNN_INC, found beside CUDA's by
  # default); libcudnn.so.9 is opened at run time where it exists
  CUDNN_INC ?= $(patsubst %/cudnn.h,%,$(firstword $(wildcard $(CUDA_HOME)/include/cudnn.h /usr/include/cudnn.h)))
  ifneq ($(CUDNN_INC),)
    NVCCFLAGS += -DSDC_HAVE_CUDNN -I$(CUDNN_INC)
  endif
endif

BENCH_SRC := $(shell find bench -name '*.c' | sort)
# bench/bench_*.c and bench/make_random_model.c are programs (one main each); the other bench/*.c are helpers
BENCH_PROGS := $(patsubst bench/%.c,$(B)/%,$(filter bench/bench_%.c bench/make_random_model.c,$(filter-out bench/bench_common.c,$(BENCH_SRC))))
BENCH_LIB := $(filter-out $(BENCH_PROGS:$(B)/%=bench/%.c),$(BENCH_SRC))

.PHONY: all test test-fast asan clean bench test-browser cuda-emu test-cuda-emu test-cluster install uninstall FORCE \
        fuzz fuzz-build fuzz-regress fuzz-targets fuzz-run
all: $(B)/sdc $(B)/test_sdc

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The front ends (tools/) are built without src/ on the include path: they
# see the library only through include/sdc.h.
$(TOOL_OBJ): CFLAGS := $(filter-out -Isrc,$(CFLAGS))

ifeq ($(CUDA),emu)
$(B)/obj/%.cu.o: %.cu tests/cuda_emu/rewrite.sed Makefile
	@mkdir -p $(dir $@)
	{ echo '#line 1 "$<"'; sed -E -f tests/cuda_emu/rewrite.sed $<; } > $(B)/obj/$*.emu.cc
	$(CXX) $(EMU_CXXFLAGS) -MMD -MP -MT $@ -MF $(B)/obj/$*.cu.d -c $(B)/obj/$*.emu.cc -o $@
$(B)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -MMD -MP -c $< -o $@
else
$(B)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@
endif

$(B)/libsdc.a: $(OBJ) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

# `sdc serve`'s web page, embedded as a C array (xxd -i) so the binary is self-contained
$(B)/gen/page_html.h: tools/server/page.html
	@mkdir -p $(dir $@)
	xxd -i $< > $@.tmp && mv $@.tmp $@
$(B)/obj/tools/server/page.o: $(B)/gen/page_html.h
$(B)/obj/tools/server/page.o: CFLAGS += -I$(B)/gen

# Where `make install` puts the program and the demo model; the program looks
# for the model there when it is not beside it (tools/default_model.c).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/sdc
# rewritten only when DATADIR changes, so a new PREFIX rebuilds what reads it
$(B)/gen/datadir.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define SDC_DATADIR "$(DATADIR)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
$(B)/obj/tools/default_model.o: $(B)/gen/datadir.h
$(B)/obj/tools/default_model.o: CFLAGS += -I$(B)/gen

install: $(B)/sdc
	install -D -m 755 $(B)/sdc $(DESTDIR)$(BINDIR)/sdc
	mkdir -p $(DESTDIR)$(DATADIR)/models
	rm -rf $(DESTDIR)$(DATADIR)/models/sdc-shapes-64
	cp -R models/sdc-shapes-64 $(DESTDIR)$(DATADIR)/models/
	chmod -R a+rX,go-w $(DESTDIR)$(DATADIR)/models/sdc-shapes-64

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sdc
	rm -rf $(DESTDIR)$(DATADIR)/models/sdc-shapes-64
	-rmdir $(DESTDIR)$(DATADIR)/models $(DESTDIR)$(DATADIR)

$(B)/sdc: $(TOOL_OBJ) $(B)/libsdc.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(B)/libsdc.a $(LDLIBS)

$(B)/test_sdc: $(TEST_OBJ) $(B)/libsdc.a
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(B)/libsdc.a $(LDLIBS)

# The sanitizer build lives in build/asan and runs the same suite against its own CLI
# (CPU only: CUDA=0, see the CUDA section above).
asan:
	$(MAKE) B=build/asan CUDA=0 OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow" \
	        LDFLAGS="-fopenmp -fsanitize=address,undefined" build/asan/sdc build/asan/test_sdc

test-fast: all
	./$(B)/test_sdc

# The CUDA backend on the CPU emulator (tests/cuda_emu, docs/gpu.md): every
# test with "cuda" in its name - the CUDA ops, graphs, and each golden case
# run with --device cuda against the CPU's PNG - on any machine, GPU or not.
cuda-emu:
	$(MAKE) B=build/emu CUDA=emu OPT=-O2 build/emu/sdc build/emu/test_sdc

test-cuda-emu: cuda-emu
	SDC_BIN=build/emu/sdc ./build/emu/test_sdc cuda

# The browser test runs first; the cluster tests run after the unit suites and end with their
# own summary line.
test: all asan cuda-emu
	$(MAKE) test-browser
	SDC_BIN=build/emu/sdc ./build/emu/test_sdc cuda
	./build/test_sdc
	ASAN_OPTIONS=detect_leaks=1 SDC_BIN=build/asan/sdc SDC_SANITIZED=1 ./build/asan/test_sdc
	$(MAKE) fuzz-regress
	$(MAKE) test-cluster

# ---- fuzzing (tests/fuzz, docs/fuzzing.md) ----
# libFuzzer targets built with clang (ASan + UBSan + float-cast-overflow) in
# build/fuzz. `make fuzz` installs clang when missing (scripts/install-fuzz-deps.sh)
# and runs each target for FUZZ_SECONDS into build/fuzz/corpus/NAME
# (seeded from tests/fixtures and tests/fuzz/seeds); `make fuzz-regress` (part of
# `make test`) runs every input of each seed corpus and of tests/fuzz/regress/NAME
# once. Without clang both say so in one line and succeed.
CLANG ?= $(shell command -v clang 2>/dev/null)
# "yes" when $(CLANG) links a libFuzzer program (clang alone, without compiler-rt, does not);
# recursive (=): only the fuzz targets pay for the check
FUZZ_CAN = $(if $(CLANG),$(shell printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
             $(CLANG) -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null && echo yes))
FUZZ_SECONDS ?= 60
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_NAMES := $(filter-out fuzz_util,$(FUZZ_NAMES))
FUZZ_SAN := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow
FUZZ_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
            -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -Wno-unknown-warning-option
# the server handlers a harness calls (libmicrohttpd, the job queue and the page stay out)
FUZZ_TOOL_OBJ := $(addprefix $(B)/obj/tools/server/,api_txt2img.o api_img2img.o api_misc.o api_extra.o inpaint_prep.o \
                   json_util.o sampler_map.o model_set.o live_preview.o)
FUZZ_RUN = ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1

fuzz-build:
	@if [ -z "$(FUZZ_CAN)" ]; then echo "fuzz: skipped, no clang with libFuzzer (scripts/install-fuzz-deps.sh installs it)"; else \
	  $(MAKE) --no-print-directory B=build/fuzz CC="$(CLANG)" CUDA=0 OPT="$(FUZZ_OPT)" LDFLAGS="-fopenmp" fuzz-targets && \
	  tests/fuzz/make_corpus.sh build/fuzz/seeds; fi

fuzz-targets: $(FUZZ_NAMES:%=$(B)/%)

# an archive, so a harness pulls in only the handlers it calls
$(B)/libsdc_server.a: $(FUZZ_TOOL_OBJ)
	@rm -f $@
	ar rcs $@ $^

.SECONDARY: $(FUZZ_NAMES:%=$(B)/obj/tests/fuzz/%.o) $(B)/obj/tests/fuzz/fuzz_util.o

$(B)/fuzz_%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/fuzz_util.o $(B)/libsdc_server.a $(B)/libsdc.a
	$(CC) -fsanitize=fuzzer $(FUZZ_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz:
	scripts/install-fuzz-deps.sh
	@$(MAKE) --no-print-directory fuzz-run

fuzz-run: fuzz-build
	@if [ -n "$(FUZZ_CAN)" ]; then for t in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/corpus/$$t && echo "fuzz: $$t for $(FUZZ_SECONDS) s" && \
	  $(FUZZ_RUN) build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crash-$$t- build/fuzz/corpus/$$t build/fuzz/seeds/$$t \
	    $$(test -d tests/fuzz/regress/$$t && echo tests/fuzz/regress/$$t) > build/fuzz/fuzz-$$t.log 2>&1; rc=$$?; \
	  grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|Test unit written)" \
	    build/fuzz/fuzz-$$t.log; test $$rc -eq 0 || { echo "fuzz: $$t found something (build/fuzz/fuzz-$$t.log)"; exit 1; }; \
	  done; fi

fuzz-regress: fuzz-build
	@if [ -n "$(FUZZ_CAN)" ]; then for t in $(FUZZ_NAMES); do \
	  $(FUZZ_RUN) build/fuzz/$$t -runs=0 -timeout=25 -rss_limit_mb=4096 -artifact_prefix=build/fuzz/regress-crash-$$t- build/fuzz/seeds/$$t \
	    $$(test -d tests/fuzz/regress/$$t && echo tests/fuzz/regress/$$t) > build/fuzz/regress-$$t.log 2>&1 || \
	    { cat build/fuzz/regress-$$t.log; echo "fuzz-regress: $$t FAILED"; exit 1; }; \
	  echo "fuzz-regress: $$t: $$(grep -ho 'INITED.*' build/fuzz/regress-$$t.log | head -1)"; done; fi

# docs/k8s-indexed-job.yaml under JOB_COMPLETION_INDEX (no cluster needed), then docs/slurm-array.sh
# on a real one-node Slurm cluster started and torn down by the test (root or sudo; it installs
# Debian's slurm-wlm and munge when missing). See tests/cluster and docs/dataset.md.
test-cluster: $(B)/sdc
	SDC_BIN=$(B)/sdc tests/cluster/k8s.sh
	SDC_BIN=$(B)/sdc tests/cluster/slurm.sh

# The web page in Debian's headless chromium, driven by playwright-core (tests/browser).
test-browser: $(B)/sdc
	cd tests/browser && npm ci --silent --no-audit --no-fund
	SDC_BIN=$(B)/sdc node tests/browser/web_test.mjs

bench: $(BENCH_PROGS)

# the infotext parser (src/pipeline, in libsdc.a) is timed by bench_hostile_input
BENCH_TOOL_OBJ := $(B)/obj/tools/server/json_util.o
$(BENCH_PROGS): $(B)/%: $(B)/obj/bench/%.o $(BENCH_LIB:%.c=$(B)/obj/%.o) $(BENCH_TOOL_OBJ) $(B)/libsdc.a
	$(CC) $(LDFLAGS) -o $@ $(B)/obj/bench/$*.o $(BENCH_LIB:%.c=$(B)/obj/%.o) $(BENCH_TOOL_OBJ) $(B)/libsdc.a $(LDLIBS)

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_SRC:%.c=$(B)/obj/%.d) $(CU_OBJ:.o=.d)
