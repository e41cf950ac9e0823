// Rank tables and token counts (see tokens.hpp).
#include "pg/common/tokens.hpp"

#include "pg/common/boundary.hpp"
#include "pg/common/format.hpp"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace agentcache::pg::tokens {

namespace {

// One per encoding, process-lifetime (plain C++ allocations: they outlive
// every memory context and, loaded in the postmaster, are shared
// copy-on-write by its children).
std::unique_ptr<core::tok::RankTable> g_tables[2];
double g_load_ms = 0;
core::tok::Counter* g_counter = nullptr;

std::string path_of(Encoding e) {
  char share[MAXPGPATH];
  get_share_path(my_exec_path, share);
  return std::string(share) + "/extension/agentcache_" + core::tok::encoding_name(e) + ".tiktoken";
}

// Loads a table; on failure returns nullptr with the SQLSTATE and message.
std::unique_ptr<core::tok::RankTable> load(Encoding e, int* sqlstate, std::string* message) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string path = path_of(e);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    *sqlstate = ERRCODE_UNDEFINED_FILE;
    *message = "could not open the rank file \"" + path + "\": " + std::strerror(errno);
    return nullptr;
  }
  std::string text;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  auto table = std::make_unique<core::tok::RankTable>();
  std::string error;
  if (read_error || !table->load(text, &error)) {
    *sqlstate = ERRCODE_DATA_CORRUPTED;
    *message = "the rank file \"" + path + "\" is damaged: " + (read_error ? std::string("read error") : error);
    return nullptr;
  }
  g_load_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return table;
}

const core::tok::RankTable& table(Encoding e) {
  auto& slot = g_tables[static_cast<int>(e)];
  if (!slot) {
    int sqlstate = 0;
    std::string message;
    slot = load(e, &sqlstate, &message);
    if (!slot)
      throw sql_error(sqlstate, message.c_str(), nullptr,
                      "Reinstall agentcache (make install, or its package): it installs the rank files.");
  }
  return *slot;
}

}  // namespace

void preload() noexcept {
  for (Encoding e : {Encoding::O200kBase, Encoding::Cl100kBase}) {
    auto& slot = g_tables[static_cast<int>(e)];
    if (slot) continue;
    int sqlstate = 0;
    std::string message;
    try {
      slot = load(e, &sqlstate, &message);
      // the character classes too: one count builds them before the fork
      if (slot) core::tok::Counter().count(*slot, e, "warm up");
    } catch (...) {
      slot.reset();
      message = "out of memory";
    }
    if (!slot) ereport(WARNING, (errmsg("agentcache: %s; token counting will retry when first used", message.c_str())));
  }
}

Encoding parse_encoding(std::string_view name) {
  Encoding e;
  if (!core::tok::encoding_from_name(name, &e))
    throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE,
                    textf<200>(FMT_STRING("unknown token encoding \"{}\""), name.substr(0, 64)).c_str(), nullptr,
                    "The encodings are o200k_base (GPT-4o and later) and cl100k_base (GPT-4, GPT-3.5).");
  return e;
}

int64 count(Encoding e, std::string_view text) {
  const core::tok::RankTable& t = table(e);
  if (g_counter == nullptr) g_counter = new core::tok::Counter();
  if (GetDatabaseEncoding() == PG_UTF8) return static_cast<int64>(g_counter->count(t, e, text));
  if (GetDatabaseEncoding() == PG_SQL_ASCII) {  // bytes as they are: they must be UTF-8
    if (!pg_verify_mbstr(PG_UTF8, text.data(), static_cast<int>(text.size()), true))
      throw sql_error(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE, "token_count needs UTF-8 text",
                      "This SQL_ASCII database holds bytes that are not valid UTF-8.");
    return static_cast<int64>(g_counter->count(t, e, text));
  }
  char* utf8 = pg_server_to_any(text.data(), static_cast<int>(text.size()), PG_UTF8);
  const std::string_view u(utf8, utf8 == text.data() ? text.size() : std::strlen(utf8));
  const int64 n = static_cast<int64>(g_counter->count(t, e, u));
  if (utf8 != text.data()) pfree(utf8);
  return n;
}

Usage usage() noexcept {
  Usage u{0, 0, g_load_ms};
  for (const auto& t : g_tables)
    if (t) {
      ++u.loaded;
      u.bytes += static_cast<int64>(t->memory_bytes());
    }
  return u;
}

}  // namespace agentcache::pg::tokens
