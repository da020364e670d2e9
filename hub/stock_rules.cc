#include "hub/stock_rules.h"

#include <cstddef>
#include <string>

#include "events/json_text.h"

namespace edgesync::hub {
namespace {

using nlohmann::json;

// Far above any real quantity (the contracts stop at 10^6 per line, 10^7 for a count) and far
// below int64's limit, so the hub's sums over many events cannot overflow and a quantity can be
// negated safely.
constexpr int64_t kMaxMagnitude = 1'000'000'000'000;

// The contracts' limit on a sku, in characters.
constexpr size_t kMaxSkuChars = 64;

// How many skipped lines a note names one by one; the rest are only counted. An unchecked event
// can carry any number of bad lines, and the note is stored with the event.
constexpr int kNamedLines = 10;

// What a line means for stock.
enum class LineRule {
  kNone,         // no stock effect
  kSubtract,     // qty >= 1 leaves the store
  kAdd,          // qty >= 1 arrives
  kAddReturned,  // qty >= 1 comes back, unless the line says "restock": false
  kAddSigned,    // delta != 0 is added as it is
  kLevel,        // on_hand >= 0 is the absolute level found
};

struct Contract {
  std::string_view type;
  int v;
  LineRule rule;
};

// The (type, version) pairs whose meaning has been read from their contracts. A new version gets
// a row only once someone has checked what its lines mean: one that is missing changes no stock,
// even if it is probably compatible, because a wrong guess corrupts stock without a trace while
// a skipped event shows in its note and can be replayed.
constexpr Contract kContracts[] = {
    {"pos.sale.completed", 1, LineRule::kSubtract},
    {"pos.sale.completed", 2, LineRule::kSubtract},
    {"pos.return.completed", 1, LineRule::kAddReturned},
    {"pos.void", 1, LineRule::kNone},
    {"inventory.adjusted", 1, LineRule::kAddSigned},
    {"inventory.counted", 1, LineRule::kLevel},
    {"inventory.received", 1, LineRule::kAdd},
    {"price.changed", 1, LineRule::kNone},
};

const char* quantity_field(LineRule rule) {
  switch (rule) {
    case LineRule::kAddSigned: return "delta";
    case LineRule::kLevel: return "on_hand";
    default: return "qty";
  }
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Text from the event, quoted and escaped for a note: at most max_chars characters, cut on a
// character boundary, control characters escaped, invalid UTF-8 replaced. Notes end up in a
// database column, which takes neither NUL nor broken UTF-8.
std::string quoted(std::string_view text, size_t max_chars) {
  size_t chars = 0;
  size_t end = 0;
  while (end < text.size()) {
    if (!is_continuation(static_cast<unsigned char>(text[end]))) {
      if (chars == max_chars) break;
      ++chars;
    }
    ++end;
  }
  std::string cut(text.substr(0, end));
  std::string out = events::json_text(json(cut));
  if (end < text.size()) out += "...";
  return out;
}

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). A JSON parser only
// yields valid text, but data built in code need not be.
bool valid_utf8(std::string_view s, size_t* chars) {
  *chars = 0;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (len > s.size() - i) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : !is_continuation(b)) return false;
    }
    i += len;
    ++*chars;
  }
  return true;
}

// Why a sku cannot be used, or "" when it can. The contracts allow 1 to 64 characters; NUL is
// refused as well because the hub's database cannot store it.
std::string sku_problem(const std::string& sku) {
  if (sku.empty()) return "sku is empty";
  size_t chars = 0;
  if (!valid_utf8(sku, &chars)) return "sku is not valid UTF-8";
  if (chars > kMaxSkuChars) return "sku is longer than 64 characters";
  if (sku.find('\0') != std::string::npos) return "sku contains a NUL character";
  return "";
}

// The note, as problems are found. Lines beyond the first few are counted, not named.
class Notes {
 public:
  void add(std::string_view text) {
    if (!text_.empty()) text_ += "; ";
    text_ += text;
  }

  void skipped_line(size_t index, const json& line, std::string_view why) {
    if (named_ == kNamedLines) {
      ++unnamed_;
      return;
    }
    ++named_;
    std::string s = "line " + std::to_string(index);
    if (line.is_object()) {
      const auto sku = line.find("sku");
      if (sku != line.end() && sku->is_string()) {
        s += " (sku " + quoted(sku->get_ref<const std::string&>(), kMaxSkuChars) + ")";
      }
    }
    s += " skipped: ";
    s += why;
    add(s);
  }

  std::string finish() {
    if (unnamed_ > 0) {
      add("and " + std::to_string(unnamed_) + " more line" + (unnamed_ == 1 ? "" : "s") +
          " skipped");
    }
    return std::move(text_);
  }

 private:
  std::string text_;
  int named_ = 0;
  size_t unnamed_ = 0;
};

// The line's quantity within +-kMaxMagnitude, or the reason there is none.
bool read_quantity(const json& line, const char* field, int64_t* out, std::string* why) {
  const auto it = line.find(field);
  if (it == line.end()) {
    *why = std::string("no ") + field;
    return false;
  }
  // Only JSON integers: 2.0, "2" and true are refused by the contracts and are not guessed at.
  if (!it->is_number_integer()) {
    *why = std::string(field) + " is not an integer";
    return false;
  }
  if (it->is_number_unsigned()) {
    const auto u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(kMaxMagnitude)) {
      *why = std::string(field) + " " + std::to_string(u) + " is beyond 10^12";
      return false;
    }
    *out = static_cast<int64_t>(u);
    return true;
  }
  const auto q = it->get<int64_t>();
  if (q > kMaxMagnitude || q < -kMaxMagnitude) {
    *why = std::string(field) + " " + std::to_string(q) + " is beyond +-10^12";
    return false;
  }
  *out = q;
  return true;
}

// One line's effect, or false with the reason it has none. *written_off: a return line that
// says it does not go back to stock, which is no problem and needs no note.
bool line_effect(LineRule rule, const json& line, size_t index, StockEffect* effect,
                 bool* written_off, std::string* why) {
  *written_off = false;
  if (!line.is_object()) {
    *why = "not an object";
    return false;
  }
  const auto sku = line.find("sku");
  if (sku == line.end()) {
    *why = "no sku";
    return false;
  }
  if (!sku->is_string()) {
    *why = "sku is not a string";
    return false;
  }
  const auto& sku_text = sku->get_ref<const std::string&>();
  if (std::string problem = sku_problem(sku_text); !problem.empty()) {
    *why = std::move(problem);
    return false;
  }
  const char* field = quantity_field(rule);
  int64_t q = 0;
  if (!read_quantity(line, field, &q, why)) return false;

  // The event type gives the direction; a quantity that contradicts it (a sale of -2 units) is
  // not turned into the opposite movement.
  switch (rule) {
    case LineRule::kSubtract:
    case LineRule::kAdd:
    case LineRule::kAddReturned:
      if (q < 1) {
        *why = std::string(field) + " " + std::to_string(q) + " is below 1";
        return false;
      }
      break;
    case LineRule::kAddSigned:
      if (q == 0) {
        *why = std::string(field) + " is 0";
        return false;
      }
      break;
    case LineRule::kLevel:
      if (q < 0) {
        *why = std::string(field) + " " + std::to_string(q) + " is negative";
        return false;
      }
      break;
    case LineRule::kNone:
      return false;
  }

  if (rule == LineRule::kAddReturned) {
    const auto restock = line.find("restock");
    if (restock != line.end()) {
      // Either guess would be wrong half the time: restocking inflates sellable stock, writing
      // off hides units that are on the shelf. Skipping says so in the note.
      if (!restock->is_boolean()) {
        *why = "restock is not true or false";
        return false;
      }
      if (!restock->get<bool>()) {
        *written_off = true;
        return false;
      }
    }
  }

  effect->kind = rule == LineRule::kLevel ? StockEffect::Kind::kLevel : StockEffect::Kind::kDelta;
  effect->sku = sku_text;
  effect->qty = rule == LineRule::kSubtract ? -q : q;
  effect->line_index = static_cast<int>(index);
  return true;
}

std::string known_versions(std::string_view type) {
  std::string s;
  for (const auto& c : kContracts) {
    if (c.type != type) continue;
    s += s.empty() ? "v" : ", v";
    s += std::to_string(c.v);
  }
  return s;
}

}  // namespace

StockRuling stock_effects(std::string_view type, int v, const nlohmann::json& data) {
  StockRuling ruling;
  const Contract* contract = nullptr;
  bool type_seen = false;
  for (const auto& c : kContracts) {
    if (c.type != type) continue;
    type_seen = true;
    if (c.v == v) contract = &c;
  }
  if (contract == nullptr) {
    const std::string name = quoted(type, 128);
    if (!type_seen) {
      ruling.note = "no stock rules for type " + name + ": stored, changes no stock";
    } else if (v == 0) {
      ruling.note = name + " came without a contract version (accepted unchecked); the rules " +
                    "know " + known_versions(type) + ": stored, changes no stock";
    } else {
      ruling.note = "no stock rules for " + name + " v" + std::to_string(v) + " (the rules know " +
                    known_versions(type) + "): stored, changes no stock";
    }
    return ruling;
  }

  ruling.known_type = true;
  if (!data.is_object()) {
    ruling.note = std::string("data is not an object but ") + data.type_name() + ": no stock change";
    return ruling;
  }
  if (contract->rule == LineRule::kNone) return ruling;

  const auto lines = data.find("lines");
  if (lines == data.end()) {
    ruling.note = "data has no lines: no stock change";
    return ruling;
  }
  if (!lines->is_array()) {
    ruling.note = std::string("lines is not an array but ") + lines->type_name() +
                  ": no stock change";
    return ruling;
  }
  if (lines->empty()) {
    ruling.note = "lines is empty: no stock change";
    return ruling;
  }

  Notes notes;
  ruling.effects.reserve(lines->size());
  size_t index = 0;
  for (const auto& line : *lines) {
    StockEffect effect;
    bool written_off = false;
    std::string why;
    if (line_effect(contract->rule, line, index, &effect, &written_off, &why)) {
      ruling.effects.push_back(std::move(effect));
    } else if (!written_off) {
      notes.skipped_line(index, line, why);
    }
    ++index;
  }
  ruling.note = notes.finish();
  return ruling;
}

}  // namespace edgesync::hub
