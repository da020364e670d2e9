#include "events/seq_ranges.h"

#include <algorithm>
#include <iterator>

namespace edgesync::events {

bool SeqRanges::insert(int64_t seq) {
  auto next = ranges_.upper_bound(seq);  // the first range that starts after seq
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->second >= seq) return false;
    if (prev->second + 1 == seq) {
      prev->second = seq;
      if (next != ranges_.end() && next->first == seq + 1) {
        prev->second = next->second;
        ranges_.erase(next);
      }
      ++count_;
      return true;
    }
  }
  if (next != ranges_.end() && next->first == seq + 1) {
    const int64_t last = next->second;
    ranges_.erase(next);
    ranges_.emplace(seq, last);
  } else {
    ranges_.emplace(seq, seq);
  }
  ++count_;
  return true;
}

int64_t SeqRanges::insert_range(int64_t first, int64_t last) {
  if (first > last) return 0;
  int64_t added = last - first + 1;
  int64_t lo = first;
  int64_t hi = last;
  auto it = ranges_.upper_bound(first);
  if (it != ranges_.begin() && std::prev(it)->second + 1 >= first) it = std::prev(it);
  // Every range that overlaps or touches [first, last] merges into one.
  while (it != ranges_.end() && it->first <= hi + 1) {
    added -= std::max<int64_t>(0, std::min(it->second, last) - std::max(it->first, first) + 1);
    lo = std::min(lo, it->first);
    hi = std::max(hi, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(lo, hi);
  count_ += added;
  return added;
}

bool SeqRanges::contains(int64_t seq) const {
  auto next = ranges_.upper_bound(seq);
  return next != ranges_.begin() && std::prev(next)->second >= seq;
}

int64_t SeqRanges::lowest() const { return ranges_.empty() ? 0 : ranges_.begin()->first; }

int64_t SeqRanges::highest() const { return ranges_.empty() ? 0 : ranges_.rbegin()->second; }

int64_t SeqRanges::contiguous_from(int64_t from) const {
  auto next = ranges_.upper_bound(from);
  if (next == ranges_.begin()) return from - 1;
  auto prev = std::prev(next);
  return prev->second >= from ? prev->second : from - 1;
}

std::vector<SeqRange> SeqRanges::missing(int64_t from, int64_t to) const {
  std::vector<SeqRange> out;
  if (from > to) return out;
  int64_t cur = from;
  auto it = ranges_.upper_bound(from);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= cur) cur = prev->second + 1;
  }
  for (; it != ranges_.end() && it->first <= to && cur <= to; ++it) {
    if (it->first > cur) out.push_back({cur, it->first - 1});
    cur = std::max(cur, it->second + 1);
  }
  if (cur <= to) out.push_back({cur, to});
  return out;
}

std::vector<SeqRange> SeqRanges::ranges() const {
  std::vector<SeqRange> out;
  out.reserve(ranges_.size());
  for (const auto& [first, last] : ranges_) out.push_back({first, last});
  return out;
}

std::string format_ranges(const std::vector<SeqRange>& ranges) {
  if (ranges.empty()) return "none";
  std::string out;
  for (const auto& r : ranges) {
    if (!out.empty()) out.append(", ");
    out.append(std::to_string(r.first));
    if (r.last != r.first) out.append("-").append(std::to_string(r.last));
  }
  return out;
}

int64_t seq_count(const std::vector<SeqRange>& ranges) {
  int64_t n = 0;
  for (const auto& r : ranges) n += r.size();
  return n;
}

}  // namespace edgesync::events
