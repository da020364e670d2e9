// valijson reads the agent's events where they already are: in nlohmann::ordered_json, the tree
// that keeps the producer's key order for the hub. valijson 1.0 ships an adapter for
// nlohmann::json only, and copying each event's data into that tree cost a fifth to a quarter
// of the contract check (docs/PERFORMANCE.md, "Contracts"). This is the same adapter interface
// (valijson/internal/basic_adapter.hpp) over any nlohmann::basic_json; valijson still does all
// the validating.
#pragma once

#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <valijson/exceptions.hpp>
#include <valijson/internal/adapter.hpp>
#include <valijson/internal/basic_adapter.hpp>
#include <valijson/internal/frozen_value.hpp>
#include <valijson/internal/optional.hpp>

namespace edgesync::events {

template <class Json>
class JsonTreeAdapter;

namespace json_tree_adapter {

template <class Json>
using Member = std::pair<std::string, JsonTreeAdapter<Json>>;

// An empty object or array for default-constructed wrappers (valijson makes some).
template <class Json>
const Json& empty_object() {
  static const Json object = Json::object();
  return object;
}
template <class Json>
const Json& empty_array() {
  static const Json array = Json::array();
  return array;
}

// One iterator for both: over an array it yields an adapter per value, over an object a member
// (its name and an adapter for its value), as valijson's BasicAdapter expects.
template <class Json, class Item>
class Iterator {
 public:
  using iterator_category = std::bidirectional_iterator_tag;
  using value_type = Item;
  using difference_type = Item;
  using pointer = Item*;
  using reference = Item&;

  Iterator(typename Json::const_iterator it) : it_(it) {}
  Item operator*() const {
    if constexpr (std::is_same_v<Item, Member<Json>>) {
      return Item(it_.key(), JsonTreeAdapter<Json>(it_.value()));
    } else {
      return Item(*it_);
    }
  }
  valijson::adapters::DerefProxy<Item> operator->() const {
    return valijson::adapters::DerefProxy<Item>(**this);
  }
  bool operator==(const Iterator& other) const { return it_ == other.it_; }
  bool operator!=(const Iterator& other) const { return !(it_ == other.it_); }
  const Iterator& operator++() {
    ++it_;
    return *this;
  }
  Iterator operator++(int) {
    Iterator before(it_);
    ++it_;
    return before;
  }
  const Iterator& operator--() {
    --it_;
    return *this;
  }
  void advance(std::ptrdiff_t n) { it_ += n; }  // arrays' (valijson's items)

 private:
  typename Json::const_iterator it_;
};

template <class Json>
using ArrayIterator = Iterator<Json, JsonTreeAdapter<Json>>;
template <class Json>
using MemberIterator = Iterator<Json, Member<Json>>;

template <class Json>
class Array {
 public:
  using const_iterator = ArrayIterator<Json>;
  using iterator = ArrayIterator<Json>;

  Array() : value_(empty_array<Json>()) {}
  explicit Array(const Json& value) : value_(value) {
    if (!value.is_array()) valijson::throwRuntimeError("Value is not an array.");
  }
  const_iterator begin() const { return value_.begin(); }
  const_iterator end() const { return value_.end(); }
  size_t size() const { return value_.size(); }

 private:
  const Json& value_;
};

template <class Json>
class Object {
 public:
  using const_iterator = MemberIterator<Json>;
  using iterator = MemberIterator<Json>;

  Object() : value_(empty_object<Json>()) {}
  explicit Object(const Json& value) : value_(value) {
    if (!value.is_object()) valijson::throwRuntimeError("Value is not an object.");
  }
  const_iterator begin() const { return value_.begin(); }
  const_iterator end() const { return value_.end(); }
  const_iterator find(const std::string& name) const { return value_.find(name); }
  size_t size() const { return value_.size(); }

 private:
  const Json& value_;
};

// A value kept by valijson beyond the document's life (enum and const use it for the schema's
// values, which the agent keeps as nlohmann::json: this is rarely instantiated for events).
template <class Json>
class FrozenValue : public valijson::adapters::FrozenValue {
 public:
  explicit FrozenValue(Json value) : value_(std::move(value)) {}
  valijson::adapters::FrozenValue* clone() const override { return new FrozenValue(value_); }
  bool equalTo(const valijson::adapters::Adapter& other, bool strict) const override {
    return JsonTreeAdapter<Json>(value_).equalTo(other, strict);
  }

 private:
  Json value_;
};

template <class Json>
class Value {
 public:
  Value() : value_(empty_object<Json>()) {}
  explicit Value(const Json& value) : value_(value) {}

  valijson::adapters::FrozenValue* freeze() const { return new FrozenValue<Json>(value_); }
  ::opt::optional<Array<Json>> getArrayOptional() const {
    if (value_.is_array()) return ::opt::make_optional(Array<Json>(value_));
    return {};
  }
  ::opt::optional<Object<Json>> getObjectOptional() const {
    if (value_.is_object()) return ::opt::make_optional(Object<Json>(value_));
    return {};
  }
  bool getArraySize(size_t& n) const { return value_.is_array() && ((n = value_.size()), true); }
  bool getObjectSize(size_t& n) const { return value_.is_object() && ((n = value_.size()), true); }
  bool getBool(bool& b) const { return value_.is_boolean() && ((b = value_.template get<bool>()), true); }
  bool getDouble(double& d) const {
    return value_.is_number_float() && ((d = value_.template get<double>()), true);
  }
  bool getInteger(int64_t& i) const {
    return value_.is_number_integer() && ((i = value_.template get<int64_t>()), true);
  }
  bool getString(std::string& s) const {
    return value_.is_string() && ((s = value_.template get_ref<const std::string&>()), true);
  }
  static bool hasStrictTypes() { return true; }
  bool isArray() const { return value_.is_array(); }
  bool isBool() const { return value_.is_boolean(); }
  bool isDouble() const { return value_.is_number_float(); }
  bool isInteger() const { return value_.is_number_integer(); }
  bool isNull() const { return value_.is_null(); }
  bool isNumber() const { return value_.is_number(); }
  bool isObject() const { return value_.is_object(); }
  bool isString() const { return value_.is_string(); }

 private:
  const Json& value_;
};

}  // namespace json_tree_adapter

template <class Json>
class JsonTreeAdapter
    : public valijson::adapters::BasicAdapter<
          JsonTreeAdapter<Json>, json_tree_adapter::Array<Json>, json_tree_adapter::Member<Json>,
          json_tree_adapter::Object<Json>, json_tree_adapter::Value<Json>> {
  using Base = valijson::adapters::BasicAdapter<
      JsonTreeAdapter<Json>, json_tree_adapter::Array<Json>, json_tree_adapter::Member<Json>,
      json_tree_adapter::Object<Json>, json_tree_adapter::Value<Json>>;

 public:
  JsonTreeAdapter() : Base() {}
  explicit JsonTreeAdapter(const Json& value) : Base(json_tree_adapter::Value<Json>(value)) {}
};

using OrderedJsonAdapter = JsonTreeAdapter<nlohmann::ordered_json>;

}  // namespace edgesync::events

namespace valijson::adapters {
template <class Json>
struct AdapterTraits<edgesync::events::JsonTreeAdapter<Json>> {
  using DocumentType = Json;
  static std::string adapterName() { return "JsonTreeAdapter"; }
};
}  // namespace valijson::adapters
