// What only the benchmark needs around its cases: its clock, percentiles, the file system of the
// scratch dir, and how its broker differs from the tests'.
//
// Child processes, the scratch dir, TLS material, the mosquitto broker, socket helpers, the
// ingest client and /proc readings come from tests/harness/ (namespace edgesync::test), which
// the integration tests share; it has no GoogleTest, so the bench builds with
// -DEDGESYNC_BUILD_TESTS=OFF.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/harness/mosquitto_broker.h"

namespace edgesync::bench {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0);
// Clock::now() in ns: a plain number to stamp from paho's callback thread.
int64_t now_ns();

// "ext4", "tmpfs", ... for the file system holding path (best effort).
std::string filesystem_type(const std::string& path);

// The bench's broker: no persistence (no broker database writes in the disk figures), a queue
// limit far above any backlog the bench builds, so that nothing is dropped silently, and no
// information-level logging.
test::BrokerOptions broker_options();

// q in [0,1]; sorts v.
double percentile(std::vector<double>& v, double q);

}  // namespace edgesync::bench
