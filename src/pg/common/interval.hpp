// Interval arithmetic that saturates instead of overflowing: the one helper
// every tier uses for TTLs, windows, refresh intervals and GUC-derived times.
#pragma once
#include "pg/common/boundary.hpp"
#include "pg/common/compat.hpp"
#include "pg/common/format.hpp"

namespace agentcache::pg {

// An interval's length in microseconds (a month is 30 days, a day 24 hours),
// saturating at the int64 range for absurdly long intervals; 'infinity' and
// '-infinity' (PostgreSQL 17+) are the two ends of that range, so an infinite
// TTL, window or refresh interval means "never" as an absurdly long one does.
inline int64 interval_usecs(const Interval* iv) {
  bool negative = false;
  if (compat::interval_is_infinite(iv, &negative)) return negative ? PG_INT64_MIN : PG_INT64_MAX;
  const __int128 v = (static_cast<__int128>(iv->month) * DAYS_PER_MONTH + iv->day) * USECS_PER_DAY + iv->time;
  if (v > PG_INT64_MAX) return PG_INT64_MAX;
  if (v < PG_INT64_MIN) return PG_INT64_MIN;
  return static_cast<int64>(v);
}

// base + usecs when the result is a valid timestamptz; false ("never")
// when it would lie past the end (or before the start) of timestamptz's range.
inline bool plus_usecs(TimestampTz base, int64 usecs, TimestampTz* out) {
  const __int128 v = static_cast<__int128>(base) + usecs;
  if (v < MIN_TIMESTAMP || v >= END_TIMESTAMP) return false;
  *out = static_cast<TimestampTz>(v);
  return true;
}

// base + iv with PostgreSQL's calendar arithmetic (timestamptz + interval)
// when the result surely fits; false ("never") otherwise. "Surely": even if
// every month had 31 days and every day 25 hours the result would lie inside
// timestamptz's range, so the arithmetic cannot raise. Intervals that close to
// the end of time (within a few thousand years of year 294276) are "never".
inline bool plus_interval(TimestampTz base, const Interval* iv, TimestampTz* out) {
  bool negative = false;
  if (compat::interval_is_infinite(iv, &negative)) return false;
  const __int128 bound =
      static_cast<__int128>(iv->month < 0 ? -static_cast<int64>(iv->month) : iv->month) * 31 * USECS_PER_DAY +
      static_cast<__int128>(iv->day < 0 ? -static_cast<int64>(iv->day) : iv->day) * 25 * USECS_PER_HOUR +
      (iv->time < 0 ? -static_cast<__int128>(iv->time) : static_cast<__int128>(iv->time));
  if (static_cast<__int128>(base) + bound >= END_TIMESTAMP || static_cast<__int128>(base) - bound < MIN_TIMESTAMP)
    return false;
  *out = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(base),
                                                 IntervalPGetDatum(const_cast<Interval*>(iv))));
  return true;
}

// A palloc'd interval of `usecs` microseconds (time part only).
inline Interval* make_interval_usecs(int64 usecs) {
  auto* iv = static_cast<Interval*>(palloc0(sizeof(Interval)));
  iv->time = usecs;
  return iv;
}

// 22023 unless the interval argument `what` is longer than zero.
inline int64 positive_interval_usecs(const Interval* iv, const char* what) {
  const int64 us = interval_usecs(iv);
  if (us <= 0)
    throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, textf(FMT_STRING("{} must be a positive interval"), what).c_str());
  return us;
}

// 22023 if the interval argument `what` is negative.
inline int64 nonnegative_interval_usecs(const Interval* iv, const char* what) {
  const int64 us = interval_usecs(iv);
  if (us < 0)
    throw sql_error(ERRCODE_INVALID_PARAMETER_VALUE, textf(FMT_STRING("{} must not be negative"), what).c_str());
  return us;
}

}  // namespace agentcache::pg
