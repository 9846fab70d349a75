// Byte layouts: GUID text and bytes, and images built from the spec's numbers
// decode to the right fields and slots.
#define BOOST_TEST_MODULE channel_layout
#include <boost/test/unit_test.hpp>

#include <cstring>

#include "channel/channel.hpp"
#include "channel/channel_types.hpp"
#include "channel/controlvm.hpp"
#include "channel/input_report.hpp"
#include "channel/iochannel.hpp"
#include "tests/channel/image_builder.hpp"

namespace ch = visorlab::channel;
using visorlab::test::ImageBuilder;

BOOST_AUTO_TEST_SUITE(guid)

BOOST_AUTO_TEST_CASE(text_form_round_trips_and_bytes_follow_guid_init) {
  const auto g = ch::Guid::parse("2b3c2d10-7ef5-4ad8-b966-3448b7386b3d");
  BOOST_REQUIRE(g);
  BOOST_TEST(g->str() == "2b3c2d10-7ef5-4ad8-b966-3448b7386b3d");
  // u32, u16, u16 little-endian, then 8 raw bytes.
  const std::uint8_t expected[16] = {0x10, 0x2d, 0x3c, 0x2b, 0xf5, 0x7e, 0xd8, 0x4a,
                                     0xb9, 0x66, 0x34, 0x48, 0xb7, 0x38, 0x6b, 0x3d};
  BOOST_TEST(std::memcmp(g->bytes.data(), expected, 16) == 0);
  BOOST_TEST((*g == ch::guids::controlvm));
}

BOOST_AUTO_TEST_CASE(parse_accepts_braces_and_upper_case_and_rejects_garbage) {
  BOOST_TEST((ch::Guid::parse("{414815ED-C58C-11DA-95A9-00E08161165F}") == ch::guids::vhba));
  BOOST_TEST(!ch::Guid::parse("414815ed-c58c-11da-95a9-00e08161165"));
  BOOST_TEST(!ch::Guid::parse("414815ed+c58c-11da-95a9-00e08161165f"));
  BOOST_TEST(!ch::Guid::parse("414815ed-c58c-11da-95a9-00e08161165g"));
  BOOST_TEST(!ch::Guid::parse(""));
}

BOOST_AUTO_TEST_CASE(every_type_guid_matches_the_spec_table) {
  BOOST_TEST(ch::guids::vhba.str() == "414815ed-c58c-11da-95a9-00e08161165f");
  BOOST_TEST(ch::guids::vnic.str() == "8cd5994d-c58e-11da-95a9-00e08161165f");
  BOOST_TEST(ch::guids::keyboard.str() == "c73416d0-b0b8-44af-b304-9d2ae99f1b3d");
  BOOST_TEST(ch::guids::mouse.str() == "addf07d4-94a9-46e2-81c3-61abcdbdbd87");
  BOOST_TEST(ch::guids::vbus.str() == "193b331b-c58f-11da-95a9-00e08161165f");
  BOOST_TEST(ch::find_type(ch::guids::vnic)->name == "vnic");
  BOOST_TEST(ch::find_type("vhba")->driver == "visorhba");
  BOOST_TEST(ch::find_type(ch::Guid{}) == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(images)

// A controlvm channel as the Linux driver lays it out: queue headers at 3072,
// message pools from 3584, 64 slots of 128 bytes each.
BOOST_AUTO_TEST_CASE(linux_controlvm_image_built_from_spec_numbers_decodes) {
  ImageBuilder img(36608);
  img.header(36608, visorlab::test::kControlvmGuidBytes, 3072, 1);
  for (std::uint32_t q = 0; q < 4; ++q) {
    const std::size_t at = 3072 + q * 128;
    img.queue(at, 3584 + q * 64 * 128 - at, 128, 64);
  }
  // One DEVICE_CREATE pending on the event queue (2): slot 1 (head moved 0 -> 1).
  const std::size_t event_q = 3072 + 2 * 128;
  const std::size_t slot1 = 3584 + 2 * 64 * 128 + 1 * 128;
  img.u32(event_q + 60, 1);
  img.u32(slot1 + 0, 0x201).u64(slot1 + 24, 77);           // id, message_handle
  img.u32(slot1 + 48 + 0, 2).u32(slot1 + 48 + 4, 3);       // bus_no, dev_no
  img.u64(slot1 + 48 + 16, 4096);                          // channel_bytes

  auto& bytes = img.bytes();
  auto channel = ch::Channel::attach(ch::Mapping::borrow(bytes), ch::type_of(ch::ChannelKind::controlvm).expect());
  const auto h = channel.header();
  BOOST_TEST(+h.size == 36608u);
  BOOST_TEST(+h.ch_space_offset == 3072u);
  BOOST_TEST(+h.version_id == 1u);
  BOOST_TEST(channel.queue_count() == 4u);
  BOOST_TEST(channel.queue(2).pending() == 1u);
  BOOST_TEST(channel.queue(0).pending() == 0u);

  ch::controlvm::Message m;
  BOOST_REQUIRE(channel.queue(2).remove(&m) == 0);
  BOOST_TEST(+m.hdr.id == 0x201u);
  BOOST_TEST(+m.hdr.message_handle == 77u);
  BOOST_TEST(+m.cmd.create_device.bus_no == 2u);
  BOOST_TEST(+m.cmd.create_device.dev_no == 3u);
  BOOST_TEST(+m.cmd.create_device.channel_bytes == 4096u);
  // Remove wrote tail and num_received at the spec's offsets.
  std::uint32_t tail = 0;
  std::uint64_t received = 0;
  std::memcpy(&tail, bytes.data() + event_q + 72, 4);
  std::memcpy(&received, bytes.data() + event_q + 64, 8);
  BOOST_TEST(tail == 1u);
  BOOST_TEST(received == 1u);
}

BOOST_AUTO_TEST_CASE(insert_writes_slot_head_and_num_sent_where_the_spec_says) {
  ImageBuilder img(4096);
  img.header(4096, {}, 128, 0).queue(128, 256, 64, 8);
  auto& bytes = img.bytes();
  auto channel = ch::Channel::attach(ch::Mapping::borrow(bytes), ch::Expect{.queue_count = 1});
  std::uint8_t signal[64];
  std::memset(signal, 0xAB, sizeof signal);
  BOOST_REQUIRE(channel.queue(0).insert(signal) == 0);
  // Slot h = (head+1) % max_slots = 1, at queue header + sig_base_offset + 1*64.
  BOOST_TEST(static_cast<int>(bytes[128 + 256 + 64]) == 0xAB);
  BOOST_TEST(static_cast<int>(bytes[128 + 256]) == 0);
  std::uint32_t head = 0;
  std::uint64_t sent = 0;
  std::memcpy(&head, bytes.data() + 128 + 60, 4);
  std::memcpy(&sent, bytes.data() + 128 + 32, 8);
  BOOST_TEST(head == 1u);
  BOOST_TEST(sent == 1u);
}

BOOST_AUTO_TEST_CASE(formatted_types_use_the_spec_layouts) {
  for (const auto& type : ch::channel_types()) {
    if (type.queue_count == 0) continue;
    const auto spec = type.spec();
    std::vector<std::byte> bytes(ch::channel_size(spec));
    ch::Channel::format(ch::Mapping::borrow(bytes), spec);
    // The formatted image passes the check its own driver makes.
    auto channel = ch::Channel::attach(ch::Mapping::borrow(bytes), type.expect());
    BOOST_TEST(channel.queue_count() == type.queue_count);
    BOOST_TEST((channel.header().chtype == type.guid));
  }
  const auto io = ch::type_of(ch::ChannelKind::vhba).spec();
  BOOST_TEST(io.ch_space_offset == 128u);  // cmd_q@128, rsp_q@256
  BOOST_TEST(io.slots_offset == 1472u);
  const auto cvm = ch::type_of(ch::ChannelKind::controlvm).spec();
  BOOST_TEST(ch::channel_size(cvm) == 36608u);
  BOOST_TEST(cvm.queues.size() == 4u);
  BOOST_TEST(cvm.queues[0].max_slots == 64u);
  BOOST_TEST(cvm.queues[0].signal_size == 128u);
  const auto kbd = ch::type_of(ch::ChannelKind::keyboard).spec();
  BOOST_TEST(kbd.ch_space_offset == 136u);
  BOOST_TEST(ch::channel_size(kbd) == 4096u);
}

BOOST_AUTO_TEST_CASE(io_channel_data_and_cmdrsp_sit_at_kernel_offsets) {
  std::vector<std::byte> bytes(ch::channel_size(ch::type_of(ch::ChannelKind::vnic).spec()));
  auto channel = ch::Channel::format(ch::Mapping::borrow(bytes), ch::type_of(ch::ChannelKind::vnic).spec());
  const std::uint8_t mac[6] = {2, 0, 0, 0, 0, 7};
  BOOST_REQUIRE(channel.write(offsetof(ch::io::IoChannel, vnic.macaddr), mac, 6) == 0);
  BOOST_TEST(static_cast<int>(bytes[384 + 5]) == 7);

  ch::io::CmdRsp rsp{};
  rsp.cmdtype = ch::io::CmdType::scsi;
  rsp.scsi.handle = 0x1122334455667788ull;
  rsp.scsi.linuxstat = -5;
  const auto* raw = reinterpret_cast<const std::uint8_t*>(&rsp);
  BOOST_TEST(raw[0] == 1);
  BOOST_TEST(raw[1] == 0x88);  // handle at union offset 0 = byte 1
  BOOST_TEST(raw[1 + 1070] == 0xFB);  // linuxstat at 1070 inside the scsi struct
}

BOOST_AUTO_TEST_SUITE_END()
