# agentcache — PGXS build of the extension (C++17) and its PostgreSQL-side tests.
# The pure C++ core is also built stand-alone by CMakeLists.txt (GoogleTest).

EXTENSION   = agentcache
MODULE_big  = agentcache
# Every install and upgrade script, by wildcard: sql/agentcache--0.1.0.sql is
# frozen as released; each later change ships as sql/agentcache--A--B.sql.
DATA        = $(sort $(wildcard sql/agentcache--*.sql))

# Every .cpp is compiled: the pure core (src/core) and the glue (src/pg: the
# common layer, one folder per tier, the worker, and the files above them).
CORE_OBJS   = $(patsubst %.cpp,%.o,$(sort $(wildcard src/core/*.cpp)))
GLUE_OBJS   = $(patsubst %.cpp,%.o,$(sort $(wildcard src/pg/*.cpp src/pg/*/*.cpp)))
OBJS        = $(CORE_OBJS) $(GLUE_OBJS)

PG_CPPFLAGS = -I$(srcdir)/include -I$(srcdir)/src
# The version the module reports (PostgreSQL 18's PG_MODULE_MAGIC_EXT) is the
# control file's default_version.
AGENTCACHE_VERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(dir $(lastword $(MAKEFILE_LIST)))agentcache.control)
PG_CPPFLAGS += -DAGENTCACHE_VERSION='"$(AGENTCACHE_VERSION)"'
PG_CXXFLAGS = -std=c++17 -fexceptions -Wall -Wextra -Wno-register -MMD -MP
# ICU (libicu-dev; PostgreSQL on Debian links it already): Unicode general
# categories for the tokenizer's pre-tokenization (src/core/tokenizer.cpp).
SHLIB_LINK  = -lstdc++ -lfmt -licuuc

# `make WERROR=1` (the test command uses it): a warning in our code fails the
# build. PostgreSQL's headers come in as system headers (src/pg/common/pg.hpp),
# so only our code is judged.
ifeq ($(WERROR),1)
PG_CXXFLAGS += -Werror
endif

# Debian's PGXS would also compile every .cpp to LLVM bitcode with clang's
# default C++ dialect; JIT inlining of C++ is useless, so turn it off. Must
# come before the include (pgxs.mk tests it while parsing).
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The BPE rank files (data/tiktoken/SOURCE.md), installed next to the
# control file as agentcache_<encoding>.tiktoken and read once per server
# (preloaded) or per backend.
TIKTOKEN = o200k_base cl100k_base
install: install-tiktoken
install-tiktoken: installdirs
	$(foreach e,$(TIKTOKEN),$(INSTALL_DATA) '$(srcdir)/data/tiktoken/$(e).tiktoken' '$(DESTDIR)$(datadir)/$(datamoduledir)/agentcache_$(e).tiktoken' &&) true
uninstall: uninstall-tiktoken
uninstall-tiktoken:
	rm -f $(foreach e,$(TIKTOKEN),'$(DESTDIR)$(datadir)/$(datamoduledir)/agentcache_$(e).tiktoken')
.PHONY: install-tiktoken uninstall-tiktoken

# Header dependencies (-MMD -MP above): a changed header rebuilds every user.
-include $(OBJS:.o=.d)
EXTRA_CLEAN = $(OBJS:.o=.d)

# The core must build without PostgreSQL on the include path.
$(CORE_OBJS): CPPFLAGS := -I$(srcdir)/include

# ---------------------------------------------------------------------------
# Tests. PGXS "make check" is unsupported, so each suite runs in its own
# throwaway instance (pg_regress --temp-instance). Run as a non-root user
# after "make install" (scripts/test.sh does both). The regress and
# isolation suites run their schedules (test/regress/schedule,
# test/isolation/schedule); test/check_schedules.sh fails first when a test
# file is not scheduled. TAP files are picked up by wildcard.
PG_REGRESS_BIN   = $(top_builddir)/src/test/regress/pg_regress
PG_ISOLATION_BIN = $(top_builddir)/src/test/isolation/pg_isolation_regress
TEST_PORT ?= 55432

check-schedules:
	bash test/check_schedules.sh

check-regress: check-schedules
	$(PG_REGRESS_BIN) --inputdir=test/regress --outputdir=test/regress --bindir='$(bindir)' \
	  --temp-instance=./tmp_check --temp-config=test/preload.conf --port=$(TEST_PORT) \
	  --dbname=contrib_regression --schedule=test/regress/schedule

check-nopreload:
	$(PG_REGRESS_BIN) --inputdir=test/nopreload --outputdir=test/nopreload --bindir='$(bindir)' \
	  --temp-instance=./tmp_check_np --temp-config=test/nopreload.conf --port=$(TEST_PORT) \
	  --dbname=contrib_regression nopreload

check-isolation: check-schedules
	$(PG_ISOLATION_BIN) --inputdir=test/isolation --outputdir=output_iso --bindir='$(bindir)' \
	  --temp-instance=./tmp_check_iso --temp-config=test/preload.conf --port=$(TEST_PORT) \
	  --dbname=contrib_regression --schedule=test/isolation/schedule

check-tap:
	rm -rf tmp_check_tap && mkdir -p tmp_check_tap && \
	TESTDIR='$(CURDIR)/tmp_check_tap' PATH="$(bindir):$$PATH" PGPORT=$(TEST_PORT) \
	PG_REGRESS='$(PG_REGRESS_BIN)' \
	prove -I $(top_builddir)/src/test/perl -I test/t test/t/*.pl

check-all: check-regress check-nopreload check-isolation check-tap

.PHONY: check-schedules check-regress check-nopreload check-isolation check-tap check-all
