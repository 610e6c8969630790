// Workload (c) through cppbook::OrderBook: `cppbook COUNT REPEATS [SEED [RESERVE]]`, one JSON
// line out. RESERVE (default 1) sizes the order-id index for COUNT orders before the clock
// starts, as the engine's tables are sized before its clock starts; 0 lets it grow.
//
// The stream is generated first, with the C library's srand(3)/rand() (glibc's generator is
// what the published figures used), and stored in a vector: order i is a buy when i is even;
// per order the price draw comes first, then the quantity draw; buys at 1880 + rand() % 10,
// sells at 1884 + rand() % 10, quantity (rand() % 10 + 1) * 100. Only the insert loop is
// timed, as this process's CPU time (CLOCK_PROCESS_CPUTIME_ID); every repetition builds a
// fresh book before its clock starts and destroys it after the clock stops. One untimed
// repetition runs first: it grows the heap to the run's size, so the timed ones allocate list
// and index nodes from memory already committed, as the engine's tables are committed
// (prefaulted) before its clock starts; without it the first repetition pays ~1M page faults.
//
// `cppbook check` runs a few small scenarios (partial fills, levels, cancels) and exits 0.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "book.hpp"

namespace {

struct Input {
  cppbook::Side side;
  cppbook::Price price;
  cppbook::Quantity qty;
};

std::vector<Input> generate(std::size_t count, unsigned seed) {
  std::vector<Input> orders;
  orders.reserve(count);
  std::srand(seed);
  for (std::size_t i = 0; i < count; ++i) {
    const bool buy = i % 2 == 0;
    const cppbook::Price price = (buy ? 1880 : 1884) + std::rand() % 10;  // first draw
    const cppbook::Quantity qty = (std::rand() % 10 + 1) * 100;           // second draw
    orders.push_back(Input{buy ? cppbook::Side::Buy : cppbook::Side::Sell, price, qty});
  }
  return orders;
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Outcome {
  std::uint64_t trades = 0;
  std::int64_t traded_qty = 0;
  std::size_t resting_orders = 0;
  std::int64_t resting_qty = 0;
  std::size_t levels = 0;
  bool operator==(const Outcome& o) const {
    return trades == o.trades && traded_qty == o.traded_qty &&
           resting_orders == o.resting_orders && resting_qty == o.resting_qty &&
           levels == o.levels;
  }
};

// One repetition: a fresh book, the timed insert loop, then the book's totals (untimed).
Outcome run_once(const std::vector<Input>& orders, bool reserve, double& seconds) {
  Outcome out;
  cppbook::OrderBook book(reserve ? orders.size() : 0);
  auto on_fill = [&out](const cppbook::Fill& fill) {
    ++out.trades;
    out.traded_qty += fill.qty;
  };
  const double start = cpu_seconds();
  cppbook::OrderId id = 0;
  for (const Input& in : orders) book.add(++id, in.side, in.price, in.qty, on_fill);
  seconds = cpu_seconds() - start;
  out.resting_orders = book.resting_orders();
  out.resting_qty = book.resting_qty();
  out.levels = book.levels();
  return out;
}

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      std::fprintf(stderr, "cppbook check failed: %s (line %d)\n", #cond, __LINE__); \
      return 1;                                                          \
    }                                                                    \
  } while (0)

int self_check() {
  using cppbook::Side;
  cppbook::OrderBook book;
  std::vector<cppbook::Fill> fills;
  auto keep = [&fills](const cppbook::Fill& f) { fills.push_back(f); };
  book.add(1, Side::Sell, 101, 5, keep);
  book.add(2, Side::Sell, 101, 7, keep);
  book.add(3, Side::Sell, 102, 4, keep);
  book.add(4, Side::Buy, 99, 3, keep);
  CHECK(fills.empty() && book.resting_orders() == 4 && book.levels() == 3);
  book.add(5, Side::Buy, 101, 8, keep);  // takes 1 wholly, 2 partly; nothing at 102
  CHECK(fills.size() == 2);
  CHECK(fills[0].maker == 1 && fills[0].qty == 5 && fills[0].price == 101);
  CHECK(fills[1].maker == 2 && fills[1].qty == 3 && fills[1].taker == 5);
  CHECK(book.resting_orders() == 3 && book.resting_qty() == 4 + 4 + 3);
  CHECK(book.cancel(2) && !book.cancel(2) && !book.cancel(1));
  CHECK(book.levels() == 2 && book.resting_qty() == 4 + 3);
  fills.clear();
  book.add(6, Side::Sell, 90, 10, keep);  // sweeps the bid at 99, rests 7 at 90
  CHECK(fills.size() == 1 && fills[0].maker == 4 && fills[0].price == 99 && fills[0].qty == 3);
  CHECK(book.resting_orders() == 2 && book.levels() == 2 && book.resting_qty() == 4 + 7);
  fills.clear();
  book.add(7, Side::Buy, 102, 11, keep);  // best ask first (90), then 102
  CHECK(fills.size() == 2 && fills[0].maker == 6 && fills[0].price == 90);
  CHECK(fills[1].maker == 3 && fills[1].price == 102 && fills[1].qty == 4);
  CHECK(book.resting_orders() == 0 && book.levels() == 0);
  std::puts("{\"check\":\"ok\"}");
  return 0;
}

int usage() {
  std::fputs("usage: cppbook COUNT REPEATS [SEED [RESERVE]]   |   cppbook check\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "check") return self_check();
  if (argc < 3 || argc > 5) return usage();
  const long long count = std::atoll(argv[1]);
  const long long repeats = std::atoll(argv[2]);
  const long long seed = argc >= 4 ? std::atoll(argv[3]) : 3;
  const long long reserve = argc == 5 ? std::atoll(argv[4]) : 1;
  if (count <= 0 || repeats <= 0 || reserve < 0 || reserve > 1) return usage();
  const std::vector<Input> orders =
      generate(static_cast<std::size_t>(count), static_cast<unsigned>(seed));
  std::vector<double> seconds(static_cast<std::size_t>(repeats));
  double warm_up_seconds = 0;
  const Outcome first = run_once(orders, reserve == 1, warm_up_seconds);
  for (long long r = 0; r < repeats; ++r) {
    const Outcome out = run_once(orders, reserve == 1, seconds[static_cast<std::size_t>(r)]);
    if (!(out == first)) {
      std::fputs("cppbook: repetitions disagree (the book is not deterministic)\n", stderr);
      return 1;
    }
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  std::printf("{\"orders\":%lld,\"trades\":%llu,\"traded_qty\":%lld,\"resting_orders\":%zu,"
              "\"resting_qty\":%lld,\"levels\":%zu,\"run_seconds\":[",
              count, static_cast<unsigned long long>(first.trades),
              static_cast<long long>(first.traded_qty), first.resting_orders,
              static_cast<long long>(first.resting_qty), first.levels);
  for (std::size_t i = 0; i < n; ++i) std::printf("%s%.9f", i ? "," : "", seconds[i]);
  std::printf("],\"orders_per_sec\":%.1f,\"warm_up_seconds\":%.9f,\"index_reserved\":%s,"
              "\"seed\":%lld,\"clock\":\"CLOCK_PROCESS_CPUTIME_ID\"}\n",
              static_cast<double>(count) / median, warm_up_seconds, reserve ? "true" : "false",
              seed);
  return 0;
}
