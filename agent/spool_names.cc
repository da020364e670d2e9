#include "agent/spool_names.h"

#include <nlohmann/json.hpp>
#include <string_view>

#include "agent/event_contract.h"
#include "agent/spool_result.h"

namespace edgesync::agent {
namespace {

// What a request's top level says about "id", read without building the document.
class IdProbe : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool object = false;  // the request is a JSON object
  bool has_id = false;  // with an "id" key
  std::string id;       // its value, when a string

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t& s) override {
    if (depth_ == 1 && at_id_) id = s;
    return value();
  }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) object = true;
    value();
    ++depth_;
    return true;
  }
  bool key(string_t& k) override {
    at_id_ = depth_ == 1 && k == "id";
    if (at_id_) has_id = true;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    value();
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool value() {
    if (depth_ == 1) at_id_ = false;
    return true;
  }
  int depth_ = 0;
  bool at_id_ = false;
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool spool_name_ignored(const std::string& name) {
  return name.empty() || name[0] == '.' || ends_with(name, ".tmp");
}

std::string spool_name_problem(const std::string& name) {
  if (ends_with(name, kResultSuffix)) {
    return "names ending in " + std::string(kResultSuffix) + " are kept for result files";
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return "the name has characters outside printable ASCII; event ids <name>:<line> are "
             "made from it";
    }
  }
  if (name.size() > kMaxSpoolNameLength) {
    return "the name is longer than " + std::to_string(kMaxSpoolNameLength) +
           " characters; event ids <name>:<line> are made from it and may have at most 128";
  }
  return "";
}

SpoolRequest apply_spool_id_rule(std::string text, const std::string& name, int64_t number) {
  SpoolRequest p;
  IdProbe probe;
  const bool parsed = nlohmann::json::sax_parse(text, &probe);
  if (!parsed || !probe.object) {
    p.text = std::move(text);
    return p;
  }
  if (probe.has_id) {
    p.id = probe.id;
    p.text = std::move(text);
    return p;
  }
  p.id = name + ":" + std::to_string(number);
  const size_t brace = text.find('{');
  const size_t next = text.find_first_not_of(" \t\r\n", brace + 1);
  const bool empty = next != std::string::npos && text[next] == '}';
  std::string member = "\"id\":";
  append_json_string(&member, p.id);
  if (!empty) member += ',';
  text.insert(brace + 1, member);
  p.text = std::move(text);
  return p;
}

}  // namespace edgesync::agent
