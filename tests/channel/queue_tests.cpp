// Signal queue semantics (spec §2) and SPSC correctness across threads and
// processes. Every concurrent test is bounded in count and in time.
#define BOOST_TEST_MODULE channel_queue
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <tuple>

#include "channel/channel.hpp"

namespace ch = visorlab::channel;
using Clock = std::chrono::steady_clock;

namespace {

struct Signal {
  std::uint64_t seq;
  std::uint8_t fill[56];
};
static_assert(sizeof(Signal) == 64);

Signal make(std::uint64_t seq) {
  Signal s;
  s.seq = seq;
  std::memset(s.fill, static_cast<int>(seq & 0xFF), sizeof s.fill);
  return s;
}

bool intact(const Signal& s) {
  for (auto b : s.fill)
    if (b != (s.seq & 0xFF)) return false;
  return true;
}

ch::ChannelSpec spec_of(std::uint32_t max_slots, std::uint32_t queues = 1) {
  ch::ChannelSpec spec;
  spec.queues.assign(queues, ch::QueueSpec{sizeof(Signal), max_slots});
  return spec;
}

// A channel in process memory (memfd), formatted.
struct Fixture {
  explicit Fixture(std::uint32_t max_slots, std::uint32_t queues = 1)
      : region(ch::Region::anonymous(ch::channel_size(spec_of(max_slots, queues)))),
        channel(ch::Channel::format(region.map(), spec_of(max_slots, queues))) {}
  ch::Region region;
  ch::Channel channel;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(semantics)

BOOST_AUTO_TEST_CASE(empty_queue_removes_eagain) {
  Fixture f(8);
  Signal s;
  BOOST_TEST(f.channel.queue(0).remove(&s) == -EAGAIN);
  BOOST_TEST(f.channel.queue(0).pending() == 0u);
}

BOOST_AUTO_TEST_CASE(capacity_is_max_slots_minus_one_and_full_counts_overflows) {
  Fixture f(8);
  auto& q = f.channel.queue(0);
  BOOST_TEST(q.capacity() == 7u);
  for (std::uint64_t i = 0; i < 7; ++i) {
    const Signal s = make(i);
    BOOST_REQUIRE(q.insert(&s) == 0);
  }
  const Signal extra = make(99);
  BOOST_TEST(q.insert(&extra) == -EIO);
  BOOST_TEST(q.insert(&extra) == -EIO);
  const auto h = f.channel.queue_header(0);
  BOOST_TEST(+h.num_overflows == 2u);
  BOOST_TEST(+h.num_sent == 7u);
  BOOST_TEST(+h.head == 7u);
  BOOST_TEST(+h.tail == 0u);
  BOOST_TEST(q.pending() == 7u);
}

BOOST_AUTO_TEST_CASE(wraparound_keeps_order_and_counters) {
  Fixture f(5);
  auto& q = f.channel.queue(0);
  std::uint64_t next_in = 0, next_out = 0;
  // 200 rounds of 3 in, 3 out crosses the end of a 5-slot ring many times.
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 3; ++i) {
      const Signal s = make(next_in++);
      BOOST_REQUIRE(q.insert(&s) == 0);
    }
    for (int i = 0; i < 3; ++i) {
      Signal s;
      BOOST_REQUIRE(q.remove(&s) == 0);
      BOOST_REQUIRE(s.seq == next_out++);
      BOOST_REQUIRE(intact(s));
    }
  }
  const auto h = f.channel.queue_header(0);
  BOOST_TEST(+h.num_sent == 600u);
  BOOST_TEST(+h.num_received == 600u);
  BOOST_TEST(+h.head == h.tail);
  BOOST_TEST(+h.head == 600u % 5);
}

BOOST_AUTO_TEST_CASE(batch_insert_behaves_as_repeated_inserts_stopping_at_full) {
  Fixture f(8);
  auto& q = f.channel.queue(0);
  Signal batch[10];
  for (std::uint64_t i = 0; i < 10; ++i) batch[i] = make(i);
  int status = 1;
  BOOST_TEST(q.insert_batch(batch, 10, &status) == 7u);
  BOOST_TEST(status == -EIO);
  BOOST_TEST(+f.channel.queue_header(0).num_overflows == 1u);
  BOOST_TEST(+f.channel.queue_header(0).num_sent == 7u);

  Signal out[10];
  BOOST_TEST(q.remove_batch(out, 4, &status) == 4u);
  BOOST_TEST(status == 0);
  BOOST_TEST(q.remove_batch(out + 4, 10, &status) == 3u);
  BOOST_TEST(status == -EAGAIN);
  for (std::uint64_t i = 0; i < 7; ++i) BOOST_TEST(out[i].seq == i);
  BOOST_TEST(+f.channel.queue_header(0).num_received == 7u);
}

BOOST_AUTO_TEST_CASE(batches_wrap_and_mix_with_single_operations) {
  Fixture f(7);
  auto& q = f.channel.queue(0);
  std::uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 100; ++round) {
    Signal batch[4];
    for (auto& s : batch) s = make(next_in++);
    BOOST_REQUIRE(q.insert_batch(batch, 4) == 4u);
    const Signal one = make(next_in++);
    BOOST_REQUIRE(q.insert(&one) == 0);
    Signal out[5];
    BOOST_REQUIRE(q.remove(&out[0]) == 0);
    BOOST_REQUIRE(q.remove_batch(out + 1, 4) == 4u);
    for (auto& s : out) BOOST_REQUIRE(s.seq == next_out++);
  }
}

BOOST_AUTO_TEST_CASE(typed_signals_must_fit_in_a_slot) {
  Fixture f(8);
  auto& q = f.channel.queue(0);
  struct Big {
    std::uint8_t bytes[65];
  } big{};
  struct Small {
    std::uint64_t seq;
  } small{42};
  BOOST_TEST(q.insert_signal(big) == -EINVAL);  // would overrun the 64-byte slot
  BOOST_TEST(q.insert_signal(small) == 0);
  BOOST_TEST(q.remove_signal(big) == -EINVAL);  // nothing consumed by a refused call
  Small out{};
  BOOST_TEST(q.remove_signal(out) == 0);
  BOOST_TEST(out.seq == 42u);
}

BOOST_AUTO_TEST_CASE(peek_reads_pending_in_order_without_consuming) {
  Fixture f(8);
  auto& q = f.channel.queue(0);
  for (std::uint64_t i = 0; i < 3; ++i) {
    const Signal s = make(i);
    q.insert(&s);
  }
  Signal s;
  BOOST_TEST(q.peek(2, &s) == 0);
  BOOST_TEST(s.seq == 2u);
  BOOST_TEST(q.peek(3, &s) == -EAGAIN);
  BOOST_TEST(q.pending() == 3u);
}

BOOST_AUTO_TEST_CASE(out_of_range_indices_written_by_the_peer_are_refused) {
  Fixture f(8);
  // A second endpoint over the same memory plays the hostile peer.
  auto peer = ch::Channel::attach(f.region.map(), ch::Expect{.queue_count = 1});
  auto& q = f.channel.queue(0);
  const std::uint32_t bad = 1000;
  const auto head_at = q.header_offset() + offsetof(ch::SignalQueueHeader, head);
  const auto tail_at = q.header_offset() + offsetof(ch::SignalQueueHeader, tail);
  BOOST_REQUIRE(peer.write(head_at, &bad, 4) == 0);
  Signal s;
  BOOST_TEST(q.remove(&s) == -EFAULT);  // consumer reads the peer's head
  BOOST_TEST(q.peek(0, &s) == -EFAULT);
  BOOST_TEST(q.pending() == 0u);

  // Fill to the cached limit so the producer must re-read the peer's tail.
  Fixture g(4);
  auto hostile = ch::Channel::attach(g.region.map(), ch::Expect{.queue_count = 1});
  auto& gq = g.channel.queue(0);
  for (std::uint64_t i = 0; i < 3; ++i) {
    const Signal x = make(i);
    BOOST_REQUIRE(gq.insert(&x) == 0);
  }
  BOOST_REQUIRE(hostile.write(tail_at, &bad, 4) == 0);
  const Signal x = make(3);
  BOOST_TEST(gq.insert(&x) == -EFAULT);
  Signal batch[2] = {make(4), make(5)};
  int status = 0;
  BOOST_TEST(gq.insert_batch(batch, 2, &status) == 0u);
  BOOST_TEST(status == -EFAULT);
}

BOOST_AUTO_TEST_CASE(geometry_is_cached_so_a_peer_cannot_redirect_slots) {
  Fixture f(8);
  auto peer = ch::Channel::attach(f.region.map(), ch::Expect{.queue_count = 1});
  auto& q = f.channel.queue(0);
  // The peer rewrites sig_base_offset and signal_size to point far outside.
  const std::uint64_t far = 1ull << 40;
  const std::uint32_t huge = 1u << 30;
  peer.write(q.header_offset() + offsetof(ch::SignalQueueHeader, sig_base_offset), &far, 8);
  peer.write(q.header_offset() + offsetof(ch::SignalQueueHeader, signal_size), &huge, 4);
  const Signal s = make(1);
  BOOST_TEST(q.insert(&s) == 0);  // still the validated geometry
  Signal out;
  BOOST_TEST(q.remove(&out) == 0);
  BOOST_TEST(out.seq == 1u);
}

BOOST_AUTO_TEST_CASE(data_area_access_is_bounds_checked) {
  Fixture f(8);
  std::uint8_t buf[16] = {};
  const auto size = f.channel.size();
  BOOST_TEST(f.channel.read(size - 16, buf, 16) == 0);
  BOOST_TEST(f.channel.read(size - 15, buf, 16) == -EIO);
  BOOST_TEST(f.channel.write(size, buf, 1) == -EIO);
  BOOST_TEST(f.channel.write(~0ull - 2, buf, 16) == -EIO);  // offset + length overflows
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(concurrency)

// Producer and consumer each check the stream: none lost, duplicated, reordered
// or corrupted. Bounded by count and a deadline.
BOOST_AUTO_TEST_CASE(two_threads_pass_numbered_signals) {
  constexpr std::uint64_t kCount = 200000;
  Fixture f(64);
  auto& q = f.channel.queue(0);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  std::atomic<bool> timed_out{false};
  std::uint64_t errors = 0, received = 0;

  std::thread consumer([&] {
    Signal batch[16];
    while (received < kCount && !timed_out) {
      const std::size_t n = (received % 3 == 0) ? q.remove_batch(batch, 16) : (q.remove(batch) == 0 ? 1 : 0);
      for (std::size_t i = 0; i < n; ++i) {
        if (batch[i].seq != received || !intact(batch[i])) ++errors;
        ++received;
      }
      if (n == 0) {
        if (Clock::now() > deadline) timed_out = true;
        std::this_thread::yield();
      }
    }
  });
  for (std::uint64_t sent = 0; sent < kCount && !timed_out;) {
    const Signal s = make(sent);
    if (q.insert(&s) == 0) {
      ++sent;
    } else {
      if (Clock::now() > deadline) timed_out = true;
      std::this_thread::yield();
    }
  }
  consumer.join();
  BOOST_TEST(!timed_out);
  BOOST_TEST(received == kCount);
  BOOST_TEST(errors == 0u);
  const auto h = f.channel.queue_header(0);
  BOOST_TEST(+h.num_sent == kCount);
  BOOST_TEST(+h.num_received == kCount);
}

// The consumer is another process that finds the channel by its shm name.
BOOST_AUTO_TEST_CASE(two_processes_pass_numbered_signals_over_shared_memory) {
  constexpr std::uint64_t kCount = 100000;
  const std::string name = "visorlab-test-" + std::to_string(getpid());
  const auto spec = spec_of(128);
  ch::Region region = ch::Region::create_shared(name, ch::channel_size(spec));
  ch::Channel producer = ch::Channel::format(region.map(), spec);

  const pid_t child = fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    // Child: attach by name (validation runs here), verify the stream. Exit
    // code 0 means every signal arrived once, in order, intact.
    int code = 0;
    try {
      ch::Region mine = ch::Region::open_shared(name);
      ch::Channel consumer = ch::Channel::attach(mine.map(), ch::Expect{.queue_count = 1, .signal_size = 64});
      const auto deadline = Clock::now() + std::chrono::seconds(60);
      Signal s;
      for (std::uint64_t expected = 0; expected < kCount;) {
        if (consumer.queue(0).remove(&s) == 0) {
          if (s.seq != expected || !intact(s)) {
            code = 1;
            break;
          }
          ++expected;
        } else if (Clock::now() > deadline) {
          code = 2;
          break;
        }
      }
    } catch (...) {
      code = 3;
    }
    _exit(code);
  }

  const auto deadline = Clock::now() + std::chrono::seconds(60);
  bool timed_out = false;
  for (std::uint64_t sent = 0; sent < kCount;) {
    const Signal s = make(sent);
    if (producer.queue(0).insert(&s) == 0) {
      ++sent;
    } else if (Clock::now() > deadline) {
      timed_out = true;
      kill(child, SIGKILL);
      break;
    }
  }
  int status = 0;
  BOOST_REQUIRE(waitpid(child, &status, 0) == child);
  BOOST_TEST(!timed_out);
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  BOOST_TEST(+producer.queue_header(0).num_received == kCount);
}

BOOST_AUTO_TEST_CASE(shared_memory_name_is_removed_with_its_creator) {
  const std::string name = "visorlab-test-unlink-" + std::to_string(getpid());
  {
    ch::Region region = ch::Region::create_shared(name, 4096);
    BOOST_CHECK_NO_THROW(ch::Region::open_shared(name));
    BOOST_CHECK_THROW(ch::Region::create_shared(name, 4096), std::system_error);  // exclusive
  }
  BOOST_CHECK_THROW(ch::Region::open_shared(name), std::system_error);
  {
    ch::Region region = ch::Region::create_shared(name, 4096);
    region.disown();  // as a forked child's copy would: the name stays with its creator
  }
  BOOST_CHECK_NO_THROW(ch::Region::open_shared(name));
  shm_unlink(("/" + name).c_str());
  BOOST_CHECK_THROW(ch::Region::open_shared("bad/name"), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// send_image (TCP) walks only what a region says may hold data: pages never
// written are not reported, and asking does not make them data.
BOOST_AUTO_TEST_CASE(a_region_reports_only_the_pages_written) {
  constexpr std::size_t kSize = 1 << 20;
  ch::Region region = ch::Region::anonymous(kSize);
  auto [first, end] = region.next_data(0);
  BOOST_TEST(first == kSize);  // nothing written yet
  BOOST_TEST(end == kSize);
  ch::Mapping m = region.map();
  m.bytes()[300000] = std::byte{1};
  std::tie(first, end) = region.next_data(0);
  BOOST_TEST(first <= 300000u);
  BOOST_TEST(end > 300000u);
  BOOST_TEST(end - first <= 64u * 1024);  // the written page (and at most a few around it), not the region
  std::tie(first, end) = region.next_data(end);
  BOOST_TEST(first == kSize);  // still no other data: looking did not allocate
}
