// The hub's page (GET /): one HTML document with its style and script inline, so that it
// loads nothing from anywhere else (it is served with a Content-Security-Policy that forbids
// it) and works on a machine without internet access.
#pragma once

#include <string_view>

namespace edgesync::hub {

std::string_view hub_page_html();

}  // namespace edgesync::hub
