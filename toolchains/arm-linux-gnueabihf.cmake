# Cross build for armhf (32-bit ARMv7, hard float) Debian 12 with Debian's gcc cross compiler.
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake
# Needs: g++-arm-linux-gnueabihf, qemu-user, and the target libraries (.ci/cross.sh armhf
# installs them). See docs/PACKAGING.md.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(EDGESYNC_CROSS_TRIPLE arm-linux-gnueabihf)
set(EDGESYNC_DEB_ARCH armhf)
set(EDGESYNC_QEMU qemu-arm)

# 64-bit time_t and off_t in our own code (glibc >= 2.34 supports _TIME_BITS=64; it requires
# _FILE_OFFSET_BITS=64). Debian 12's armhf libraries are still built with 32-bit time_t, so
# this is only safe because no library API the agent uses passes time_t, struct timespec,
# struct timeval or struct stat across the boundary (sqlite3, paho-mqtt C/C++, sd-daemon are
# clean; mbedtls_ssl_session's `start` and gtest's inline posix::Stat are not: do not use those
# with this flag). Reasoning and the audit: docs/PACKAGING.md, "32-bit ARM and time_t".
# Set EDGESYNC_ARMHF_TIME64=OFF to build with the platform's 32-bit time_t instead.
option(EDGESYNC_ARMHF_TIME64 "armhf: build with 64-bit time_t (_TIME_BITS=64)" ON)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGESYNC_ARMHF_TIME64)
if(EDGESYNC_ARMHF_TIME64)
  set(CMAKE_C_FLAGS_INIT "-D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64")
  set(CMAKE_CXX_FLAGS_INIT "-D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross-common.cmake)
