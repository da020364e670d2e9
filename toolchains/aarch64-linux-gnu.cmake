# Cross build for arm64 (aarch64) Debian 12 with Debian's gcc cross compiler.
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake
# Needs: g++-aarch64-linux-gnu, qemu-user, and the target libraries (.ci/cross.sh arm64
# installs them). See docs/PACKAGING.md.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(EDGESYNC_CROSS_TRIPLE aarch64-linux-gnu)
set(EDGESYNC_DEB_ARCH arm64)
set(EDGESYNC_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross-common.cmake)
