// Attach-time validation: the spec §1 check and the structure checks, each
// failure a typed ChannelError naming the check and its offset.
#define BOOST_TEST_MODULE channel_validation
#include <boost/test/unit_test.hpp>

#include <functional>

#include "channel/channel.hpp"
#include "channel/channel_types.hpp"
#include "tests/channel/image_builder.hpp"

namespace ch = visorlab::channel;
using visorlab::test::ImageBuilder;

namespace {

// A valid 2-queue channel: queue headers at 128 and 256, slots from 384.
ImageBuilder valid_image() {
  ImageBuilder img(4096);
  img.header(4096, visorlab::test::kControlvmGuidBytes, 128, 1);
  img.queue(128, 256, 64, 16);           // slots 384 .. 384+1024
  img.queue(256, 1152, 64, 16);          // slots 1408 .. 2432
  return img;
}

ch::Expect expect_two_queues() {
  return ch::Expect{.type = ch::guids::controlvm, .min_bytes = 1024, .version_id = 1, .queue_count = 2};
}

// Attaches and returns the failure; fails the test if attach succeeds.
ch::ChannelError failure_of(ImageBuilder img, ch::Expect expect = expect_two_queues(), std::size_t mapped = 0) {
  auto& bytes = img.bytes();
  std::span<std::byte> view(bytes.data(), mapped ? mapped : bytes.size());
  try {
    ch::Channel::attach(ch::Mapping::borrow(view), expect);
  } catch (const ch::ChannelError& e) {
    return e;
  }
  BOOST_FAIL("attach accepted an invalid image");
  throw;  // unreachable
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_valid_image_attaches) {
  auto img = valid_image();
  BOOST_CHECK_NO_THROW(ch::Channel::attach(ch::Mapping::borrow(img.bytes()), expect_two_queues()));
}

BOOST_AUTO_TEST_CASE(fewer_bytes_than_a_header) {
  const auto e = failure_of(valid_image(), expect_two_queues(), 100);
  BOOST_TEST((e.check() == ch::Check::mapping_size));
  BOOST_TEST(e.offset() == 0u);
}

BOOST_AUTO_TEST_CASE(wrong_type_guid) {
  auto expect = expect_two_queues();
  expect.type = ch::guids::vhba;
  const auto e = failure_of(valid_image(), expect);
  BOOST_TEST((e.check() == ch::Check::chtype));
  BOOST_TEST(e.offset() == 32u);
  BOOST_TEST(std::string(e.what()).find("414815ed-c58c-11da-95a9-00e08161165f") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(size_below_min_bytes) {
  auto expect = expect_two_queues();
  expect.min_bytes = 8192;
  const auto e = failure_of(valid_image(), expect);
  BOOST_TEST((e.check() == ch::Check::min_bytes));
  BOOST_TEST(e.offset() == 16u);
}

BOOST_AUTO_TEST_CASE(wrong_version) {
  auto img = valid_image();
  img.u32(72, 7);
  const auto e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::version_id));
  BOOST_TEST(e.offset() == 72u);
}

BOOST_AUTO_TEST_CASE(bad_signature) {
  auto img = valid_image();
  img.u64(0, 0xDEADBEEF);
  const auto e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::signature));
  BOOST_TEST(e.offset() == 0u);
  BOOST_TEST(std::string(e.what()).find("0x4c4e4345") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(checks_run_in_the_kernel_order) {
  // Wrong type and bad signature: the type is reported, as visor_check_channel does.
  auto img = valid_image();
  img.u64(0, 0);
  auto expect = expect_two_queues();
  expect.type = ch::guids::vnic;
  BOOST_TEST((failure_of(img, expect).check() == ch::Check::chtype));
}

BOOST_AUTO_TEST_CASE(zero_fields_in_expect_are_not_checked) {
  auto img = valid_image();
  img.u32(72, 99);  // any version
  BOOST_CHECK_NO_THROW(ch::Channel::attach(ch::Mapping::borrow(img.bytes()), ch::Expect{.queue_count = 2}));
}

BOOST_AUTO_TEST_CASE(size_larger_than_the_mapping) {
  auto img = valid_image();
  img.u64(16, 1ull << 40);
  auto expect = expect_two_queues();
  const auto e = failure_of(img, expect);
  BOOST_TEST((e.check() == ch::Check::size));
  BOOST_TEST(e.offset() == 16u);
}

BOOST_AUTO_TEST_CASE(ch_space_offset_inside_the_header_or_misaligned) {
  auto img = valid_image();
  img.u64(64, 64);
  auto e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::ch_space_offset));
  BOOST_TEST(e.offset() == 64u);
  img.u64(64, 131);
  BOOST_TEST((failure_of(img).check() == ch::Check::ch_space_offset));
}

BOOST_AUTO_TEST_CASE(queue_headers_past_size) {
  auto img = valid_image();
  img.u64(64, 4096 - 128);  // room for one queue header, not two
  const auto e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::queue_header_bounds));
  // A huge offset must not wrap around.
  img.u64(64, ~0ull - 7);
  BOOST_TEST((failure_of(img).check() == ch::Check::queue_header_bounds));
}

BOOST_AUTO_TEST_CASE(zero_or_unexpected_signal_size) {
  auto img = valid_image();
  img.u32(256 + 48, 0);
  auto e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::signal_size));
  BOOST_TEST(e.offset() == 256u + 48);
  auto expect = expect_two_queues();
  expect.signal_size = 128;
  e = failure_of(valid_image(), expect);
  BOOST_TEST((e.check() == ch::Check::signal_size));
  BOOST_TEST(e.offset() == 128u + 48);
}

BOOST_AUTO_TEST_CASE(fewer_than_two_slots) {
  auto img = valid_image();
  img.u32(128 + 52, 1);
  const auto e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::max_slots));
  BOOST_TEST(e.offset() == 128u + 52);
}

BOOST_AUTO_TEST_CASE(slots_past_size_including_overflowing_arithmetic) {
  auto img = valid_image();
  img.u32(256 + 52, 64);  // 64 slots of 64 bytes from 1408 overrun 4096
  auto e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::slots_bounds));
  BOOST_TEST(e.offset() == 256u + 16);
  img = valid_image();
  img.u64(128 + 16, ~0ull - 100);  // sig_base_offset wraps
  BOOST_TEST((failure_of(img).check() == ch::Check::slots_bounds));
  img = valid_image();
  img.u32(128 + 48, 0xFFFFFFFF).u32(128 + 52, 0xFFFFFFFF);  // slots * size overflows 32 bits
  BOOST_TEST((failure_of(img).check() == ch::Check::slots_bounds));
}

BOOST_AUTO_TEST_CASE(head_or_tail_out_of_range) {
  auto img = valid_image();
  img.u32(128 + 60, 16);
  auto e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::head));
  BOOST_TEST(e.offset() == 128u + 60);
  img = valid_image();
  img.u32(256 + 72, 1000);
  e = failure_of(img);
  BOOST_TEST((e.check() == ch::Check::tail));
  BOOST_TEST(e.offset() == 256u + 72);
}

BOOST_AUTO_TEST_CASE(message_names_check_and_offset) {
  auto img = valid_image();
  img.u32(128 + 60, 16);
  const std::string what = failure_of(img).what();
  BOOST_TEST(what.find("check 'head' failed at offset 188") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(format_refuses_layouts_that_cannot_be) {
  ch::ChannelSpec bad;
  bad.ch_space_offset = 100;
  BOOST_CHECK_THROW(ch::channel_size(bad), ch::ChannelError);
  ch::ChannelSpec overlap;
  overlap.queues = {ch::QueueSpec{64, 4}};
  overlap.slots_offset = 200;  // queue header occupies 128..256
  BOOST_CHECK_THROW(ch::channel_size(overlap), ch::ChannelError);
  ch::ChannelSpec small;
  small.queues = {ch::QueueSpec{64, 1024}};
  std::vector<std::byte> bytes(4096);
  BOOST_CHECK_THROW(ch::Channel::format(ch::Mapping::borrow(bytes), small), ch::ChannelError);
}

// Random corruption of a valid controlvm image: attach either refuses it with a
// ChannelError or yields a channel whose queues stay inside the mapping
// (AddressSanitizer in CI catches any stray access).
BOOST_AUTO_TEST_CASE(random_corruption_never_escapes_the_mapping) {
  const auto& type = ch::type_of(ch::ChannelKind::controlvm);
  std::vector<std::byte> pristine(ch::channel_size(type.spec()));
  ch::Channel::format(ch::Mapping::borrow(pristine), type.spec());
  std::uint64_t state = 12345;
  auto rnd = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull, state >> 33; };
  int refused = 0, accepted = 0;
  for (int round = 0; round < 2000; ++round) {
    auto bytes = pristine;
    for (int k = 0; k < 4; ++k) {
      // Corrupt the header or a queue header, where validation must catch it.
      const std::size_t at = (k % 2 == 0) ? rnd() % 128 : 3072 + rnd() % 512;
      bytes[at] = static_cast<std::byte>(rnd());
    }
    try {
      auto channel = ch::Channel::attach(ch::Mapping::borrow(bytes), ch::Expect{.queue_count = 4});
      ++accepted;
      std::byte slot[128 * 4] = {};
      for (std::uint32_t q = 0; q < 4; ++q) {
        auto& queue = channel.queue(q);
        if (queue.signal_size() > sizeof slot) continue;
        queue.insert(slot);
        queue.remove(slot);
        queue.peek(0, slot);
      }
    } catch (const ch::ChannelError&) {
      ++refused;
    }
  }
  BOOST_TEST(refused > 0);
  BOOST_TEST(accepted > 0);
}
