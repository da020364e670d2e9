#include "platform/clock.h"

#include <gtest/gtest.h>

namespace edgesync::platform {
namespace {

TEST(Clock, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(951782400000), "2000-02-29T00:00:00.000Z");
  // Past 2038: must not depend on a 32-bit time_t (armhf).
  EXPECT_EQ(format_rfc3339_ms(4102444800123), "2100-01-01T00:00:00.123Z");
}

TEST(Clock, Rfc3339Validation) {
  EXPECT_TRUE(is_rfc3339("2026-11-23T08:15:02Z"));
  EXPECT_TRUE(is_rfc3339("2026-11-23t08:15:02.123456z"));
  EXPECT_TRUE(is_rfc3339("2024-02-29T23:59:60-05:30"));
  EXPECT_FALSE(is_rfc3339("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(is_rfc3339("2026-11-23 08:15:02Z"));
  EXPECT_FALSE(is_rfc3339("2026-11-23T08:15:02"));
  EXPECT_FALSE(is_rfc3339("2026-11-23T24:00:00Z"));
  EXPECT_FALSE(is_rfc3339("2026-11-23T08:15:02.Z"));
  EXPECT_FALSE(is_rfc3339("2026-11-23T08:15:02+0100"));
  EXPECT_FALSE(is_rfc3339(""));
}

TEST(Clock, ParseRfc3339Utc) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00Z"), int64_t{0});
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00Z"), int64_t{1796029200000});
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30t09:00:00z"), int64_t{1796029200000});
  EXPECT_EQ(parse_rfc3339_ms("2000-02-29T12:34:56Z"), int64_t{951827696000});
  EXPECT_EQ(parse_rfc3339_ms("2100-12-31T23:59:59Z"), int64_t{4133980799000});
}

TEST(Clock, ParseRfc3339Offsets) {
  const std::optional<int64_t> utc = int64_t{1796029200000};  // 2026-11-30T09:00:00Z
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T10:00:00+01:00"), utc);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T03:30:00-05:30"), utc);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00+00:00"), utc);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00-00:00"), utc);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T23:59:00+14:59"), utc);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-29T09:01:00-23:59"), utc);
  // An offset that moves the instant across a day, a month and a year.
  EXPECT_EQ(parse_rfc3339_ms("2026-01-01T00:30:00+01:00"), int64_t{1767223800000});
  EXPECT_EQ(parse_rfc3339_ms("2025-12-31T22:30:00-01:00"), int64_t{1767223800000});
}

TEST(Clock, ParseRfc3339Fractions) {
  const int64_t s = 1796029200000;
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00.1Z"), s + 100);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00.12Z"), s + 120);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00.123Z"), s + 123);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00.000Z"), s);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00.007Z"), s + 7);
  // Below a millisecond is dropped, not rounded.
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00.1239Z"), s + 123);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00.999999999999999999999999Z"), s + 999);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T10:00:00.5+01:00"), s + 500);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-30T09:00:00." + std::string(10000, '9') + "Z"), s + 999);
}

TEST(Clock, ParseRfc3339LeapDaysAndSeconds) {
  EXPECT_EQ(parse_rfc3339_ms("2024-02-29T00:00:00Z"), int64_t{1709164800000});
  EXPECT_TRUE(parse_rfc3339_ms("2000-02-29T00:00:00Z").has_value());  // divisible by 400
  EXPECT_FALSE(parse_rfc3339_ms("2100-02-29T00:00:00Z").has_value());  // by 100, not 400
  EXPECT_FALSE(parse_rfc3339_ms("1900-02-29T00:00:00Z").has_value());
  EXPECT_FALSE(parse_rfc3339_ms("2023-02-29T00:00:00Z").has_value());
  EXPECT_EQ(*parse_rfc3339_ms("2024-03-01T00:00:00Z") - *parse_rfc3339_ms("2024-02-28T00:00:00Z"),
            2 * 86400000);
  EXPECT_EQ(*parse_rfc3339_ms("2023-03-01T00:00:00Z") - *parse_rfc3339_ms("2023-02-28T00:00:00Z"),
            86400000);
  // A leap second is the next second's start, as POSIX time counts it.
  EXPECT_EQ(parse_rfc3339_ms("2016-12-31T23:59:60Z"), int64_t{1483228800000});
  EXPECT_EQ(parse_rfc3339_ms("2016-12-31T23:59:60.5Z"), int64_t{1483228800500});
}

TEST(Clock, ParseRfc3339RefusesInvalidText) {
  for (const char* bad : {
           "", "2026", "2026-11-30", "2026-11-30T09:00", "2026-11-30T09:00:00",
           "2026-11-30 09:00:00Z", "2026-11-30_09:00:00Z", " 2026-11-30T09:00:00Z",
           "2026-11-30T09:00:00Z ", "2026-11-30T09:00:00ZZ", "2026-11-30T09:00:00.Z",
           "2026-11-30T09:00:00,5Z", "2026-11-30T09:00:00+0100", "2026-11-30T09:00:00+01",
           "2026-11-30T09:00:00+01:00Z", "2026-11-30T09:00:00+24:00", "2026-11-30T09:00:00+01:60",
           "2026-11-30T09:00:00UTC", "2026-00-10T09:00:00Z", "2026-13-10T09:00:00Z",
           "2026-11-00T09:00:00Z", "2026-11-31T09:00:00Z", "2026-04-31T09:00:00Z",
           "2026-01-32T09:00:00Z", "2026-11-30T24:00:00Z", "2026-11-30T09:60:00Z",
           "2026-11-30T09:00:61Z", "2026-1-30T09:00:00Z", "26-11-30T09:00:00Z",
           "+2026-11-30T09:00:00Z", "-001-11-30T09:00:00Z", "2026-11-30T9:00:00Z",
           "2026/11/30T09:00:00Z", "2026-11-30T09-00-00Z", "2O26-11-30T09:00:00Z",
           "2026-11-30T09:00:00.1a2Z", "2026-11-30T09:00:0aZ", "2026-11-30T09:00:00-1:00"}) {
    EXPECT_FALSE(parse_rfc3339_ms(bad).has_value()) << bad;
    EXPECT_FALSE(is_rfc3339(bad)) << bad;
  }
  // A NUL inside the text is not its end.
  EXPECT_FALSE(parse_rfc3339_ms(std::string_view("2026-11-30T09:00:00Z\0", 21)).has_value());
}

TEST(Clock, ParseRfc3339InvertsFormatFrom1970To2100) {
  const int64_t end = *parse_rfc3339_ms("2101-01-01T00:00:00Z");
  // A step that is not a whole number of days, hours or seconds, so every field varies.
  const int64_t step = 86400000 + 3600000 + 60000 + 1000 + 7;
  int checked = 0;
  for (int64_t ms = 0; ms < end; ms += step) {
    const std::string text = format_rfc3339_ms(ms);
    ASSERT_EQ(parse_rfc3339_ms(text), ms) << text;
    ++checked;
  }
  EXPECT_GT(checked, 40000);
  // Every year's first and last millisecond, and the days around February's end.
  for (int y = 1970; y <= 2100; ++y) {
    const std::string first = std::to_string(y) + "-01-01T00:00:00.000Z";
    const std::string feb28 = std::to_string(y) + "-02-28T23:59:59.999Z";
    const std::string mar1 = std::to_string(y) + "-03-01T00:00:00.000Z";
    for (const std::string& text : {first, feb28, mar1}) {
      auto ms = parse_rfc3339_ms(text);
      ASSERT_TRUE(ms.has_value()) << text;
      EXPECT_EQ(format_rfc3339_ms(*ms), text);
    }
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    EXPECT_EQ(*parse_rfc3339_ms(mar1) - *parse_rfc3339_ms(feb28), leap ? 86400001 : 1) << y;
    if (y > 1970) {
      EXPECT_EQ(format_rfc3339_ms(*parse_rfc3339_ms(first) - 1),
                std::to_string(y - 1) + "-12-31T23:59:59.999Z");
    }
  }
}

}  // namespace
}  // namespace edgesync::platform
