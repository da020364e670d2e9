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

}  // namespace
}  // namespace edgesync::platform
