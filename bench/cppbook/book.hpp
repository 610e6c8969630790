// A price-time-priority limit order book, matching only, for GTC limit orders.
//
// Written for Kootabase as the C++ side of `kootabase bench engine --workload c`: a plain book
// in the usual style of header-only C++ books, so the compiled engine's figure on workload (c)
// has a baseline measured on the same machine, in the same run. It keeps no balances, holds,
// fees, postings or events: the engine does all of those, this book only matches.
//
// Layout (the idiomatic one, neither deliberately slow nor exotically tuned):
//   - per side a std::map<price, Level>: bids by descending price, asks ascending, so the best
//     price of either side is begin();
//   - a Level is a FIFO of orders, a std::list: a resting order's list iterator stays valid
//     while others are added and removed, so the order-id index can hold it and a cancel is
//     O(1) without searching the queue (a std::deque would invalidate it, and a cancel would
//     have to walk the level: on workload (c) that is ~70,000 orders deep);
//   - an std::unordered_map from order id to the order's side, price and list iterator, kept
//     for cancels as such books keep it, even though the insert-only workload never cancels;
//     the constructor can size it for an expected number of resting orders, as the engine's
//     tables are sized (max_orders) before its clock starts: growing a node-based hash table
//     rehashes every node it holds, and on workload (c) that is most of the insert loop's time;
//   - matching walks the opposite side from its best level while the price crosses, filling
//     makers in time order (partial fills included); the taker's remainder rests at its limit.
//   - empty levels are erased at once, so levels() counts levels holding orders.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <list>
#include <map>
#include <unordered_map>

namespace cppbook {

enum class Side : std::uint8_t { Buy, Sell };

using OrderId = std::uint64_t;
using Price = std::int64_t;     // ticks
using Quantity = std::int64_t;  // quantity units (workload (c): 100 units are one lot)

struct Order {
  OrderId id;
  Quantity open_qty;
};

struct Level {
  Quantity total_qty = 0;  // depth at this price, as books keep it for market data
  std::list<Order> queue;  // time priority: front is oldest
};

// One maker filled (wholly or partly) by one taker: one trade.
struct Fill {
  OrderId maker;
  OrderId taker;
  Price price;
  Quantity qty;
};

class OrderBook {
 public:
  // `expected_orders`: how many orders may rest at once (0: let the index grow as it goes).
  explicit OrderBook(std::size_t expected_orders = 0) {
    if (expected_orders > 0) index_.reserve(expected_orders);
  }

  // Match a GTC limit order against the opposite side, then rest what is left.
  // `on_fill(const Fill&)` is called once per trade, in execution order.
  // Order ids must be unique (the caller numbers its orders).
  template <class OnFill>
  void add(OrderId id, Side side, Price limit, Quantity qty, OnFill&& on_fill) {
    if (side == Side::Buy) {
      qty = match(asks_, id, limit, qty, on_fill);
      if (qty > 0) rest(bids_, id, side, limit, qty);
    } else {
      qty = match(bids_, id, limit, qty, on_fill);
      if (qty > 0) rest(asks_, id, side, limit, qty);
    }
  }

  // Remove a resting order; false when the id is not resting.
  bool cancel(OrderId id) {
    auto found = index_.find(id);
    if (found == index_.end()) return false;
    const Locator loc = found->second;
    index_.erase(found);
    if (loc.side == Side::Buy) {
      unlink(bids_, loc);
    } else {
      unlink(asks_, loc);
    }
    return true;
  }

  std::size_t resting_orders() const { return index_.size(); }
  std::size_t levels() const { return bids_.size() + asks_.size(); }

  // Open quantity over both sides (walks every level: for reports, not for the hot path).
  Quantity resting_qty() const {
    Quantity total = 0;
    for (const auto& entry : bids_) total += entry.second.total_qty;
    for (const auto& entry : asks_) total += entry.second.total_qty;
    return total;
  }

 private:
  using Bids = std::map<Price, Level, std::greater<Price>>;
  using Asks = std::map<Price, Level, std::less<Price>>;

  struct Locator {
    Side side;
    Price price;
    std::list<Order>::iterator it;
  };

  // Fill `qty` against `opposite` while its best price crosses `limit`; returns what is left.
  // The side's comparator orders better prices first, so "the level is no better than the
  // limit" is key_comp()(limit, level price) for both sides.
  template <class Ladder, class OnFill>
  Quantity match(Ladder& opposite, OrderId taker, Price limit, Quantity qty, OnFill& on_fill) {
    while (qty > 0 && !opposite.empty()) {
      auto best = opposite.begin();
      if (opposite.key_comp()(limit, best->first)) break;
      Level& level = best->second;
      while (qty > 0 && !level.queue.empty()) {
        Order& maker = level.queue.front();
        const Quantity traded = std::min(qty, maker.open_qty);
        maker.open_qty -= traded;
        level.total_qty -= traded;
        qty -= traded;
        on_fill(Fill{maker.id, taker, best->first, traded});
        if (maker.open_qty == 0) {
          index_.erase(maker.id);
          level.queue.pop_front();
        }
      }
      if (level.queue.empty()) opposite.erase(best);
    }
    return qty;
  }

  template <class Ladder>
  void rest(Ladder& own, OrderId id, Side side, Price limit, Quantity qty) {
    Level& level = own[limit];
    level.queue.push_back(Order{id, qty});
    level.total_qty += qty;
    index_.emplace(id, Locator{side, limit, std::prev(level.queue.end())});
  }

  template <class Ladder>
  void unlink(Ladder& own, const Locator& loc) {
    auto at = own.find(loc.price);
    Level& level = at->second;
    level.total_qty -= loc.it->open_qty;
    level.queue.erase(loc.it);
    if (level.queue.empty()) own.erase(at);
  }

  Bids bids_;
  Asks asks_;
  std::unordered_map<OrderId, Locator> index_;
};

}  // namespace cppbook
