// A set of seqs kept as disjoint, non-adjacent closed ranges: memory grows with the number of
// holes, not with the number of seqs. Used by the box's reconciliation, the resend requests and
// the hub's gaps.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace edgesync::events {

struct SeqRange {
  int64_t first = 0;
  int64_t last = 0;
  int64_t size() const { return last - first + 1; }
  bool operator==(const SeqRange& o) const { return first == o.first && last == o.last; }
};

class SeqRanges {
 public:
  // True iff `seq` was not in the set before.
  bool insert(int64_t seq);
  // Adds every seq of [first, last]; returns how many were not in the set before.
  int64_t insert_range(int64_t first, int64_t last);
  bool contains(int64_t seq) const;
  bool empty() const { return ranges_.empty(); }
  int64_t count() const { return count_; }
  int64_t lowest() const;   // 0 when empty
  int64_t highest() const;  // 0 when empty
  // The highest h such that every seq in [from, h] is in the set; from - 1 if `from` is not.
  int64_t contiguous_from(int64_t from) const;
  // The seqs of [from, to] that are not in the set, as ranges.
  std::vector<SeqRange> missing(int64_t from, int64_t to) const;
  std::vector<SeqRange> ranges() const;
  size_t range_count() const { return ranges_.size(); }

 private:
  std::map<int64_t, int64_t> ranges_;  // first -> last
  int64_t count_ = 0;
};

// "1-5000, 5002-9000, 9005"; "none" when empty.
std::string format_ranges(const std::vector<SeqRange>& ranges);
// The number of seqs in `ranges`.
int64_t seq_count(const std::vector<SeqRange>& ranges);

}  // namespace edgesync::events
