// `visorlab channel create|inspect` run as a user would: real binary, real files.
#define BOOST_TEST_MODULE cli_channel
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/channel/image_builder.hpp"
#include "tests/support/run.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using visorlab::test::bin;
using visorlab::test::run;

namespace {

struct TempDir {
  TempDir() : path(fs::temp_directory_path() / ("visorlab-cli-" + std::to_string(getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  fs::path path;
};

void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

json inspect_ok(const std::string& path, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {bin("visorlab"), "channel", "inspect", path};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto r = run(argv);
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  return json::parse(r.out);
}

}  // namespace

BOOST_AUTO_TEST_CASE(create_then_inspect_every_type) {
  TempDir tmp;
  const std::pair<std::string, int> types[] = {{"controlvm", 4}, {"vhba", 2}, {"vnic", 2}, {"keyboard", 1}, {"mouse", 1}};
  for (const auto& [type, queues] : types) {
    const auto path = tmp.file(type + ".img");
    const auto c = run({bin("visorlab"), "channel", "create", "--type", type, "--out", path});
    BOOST_TEST_REQUIRE(c.exit_code == 0, type << ": " << c.err);
    const json j = inspect_ok(path);
    BOOST_TEST(j["type"] == type);
    BOOST_TEST(j["header"]["signature"] == 0x4C4E4345);
    BOOST_TEST(j["header"]["size"] == fs::file_size(path));
    BOOST_TEST(j["queues"].size() == static_cast<std::size_t>(queues));
    for (const auto& q : j["queues"]) {
      BOOST_TEST(q["pending"] == 0);
      BOOST_TEST(q.contains("sig_base_offset"));
      BOOST_TEST(q.contains("num_overflows"));
      BOOST_TEST(q["max_signals"] == q["max_slots"].get<int>() - 1);
    }
  }
  const json cvm = inspect_ok(tmp.file("controlvm.img"));
  BOOST_TEST(cvm["header"]["chtype"] == "2b3c2d10-7ef5-4ad8-b966-3448b7386b3d");
  BOOST_TEST(cvm["header"]["ch_space_offset"] == 3072);
  BOOST_TEST(cvm["queues"][0]["max_slots"] == 64);
  BOOST_TEST(cvm["queues"][0]["signal_size"] == 128);
  BOOST_TEST(cvm["queues"][0]["messages"].empty());
}

// A controlvm image as the Linux driver lays it out (queues at 3072, message
// pools at 3584), with messages pending on the event queue after a wrap.
BOOST_AUTO_TEST_CASE(inspect_decodes_pending_controlvm_messages_in_queue_order) {
  TempDir tmp;
  visorlab::test::ImageBuilder img(36608);
  img.header(36608, visorlab::test::kControlvmGuidBytes, 3072, 1);
  for (std::uint32_t q = 0; q < 4; ++q) img.queue(3072 + q * 128, 3584 + q * 8192 - (3072 + q * 128), 128, 64);
  const std::size_t event_q = 3072 + 2 * 128, pool = 3584 + 2 * 8192;
  img.u32(event_q + 72, 62).u32(event_q + 60, 1);  // tail 62, head 1: slots 63, 0, 1 pending
  auto msg = [&](std::uint32_t slot) { return pool + slot * 128; };
  img.u32(msg(63), 0x301).u64(msg(63) + 24, 1).u32(msg(63) + 16, 0x2);  // CHIPSET_INIT, response_expected
  img.u32(msg(63) + 48 + 8, 0x2);                                          // features PARA_HOTPLUG
  img.u32(msg(0), 0x204).u64(msg(0) + 24, 2);                              // DEVICE_CHANGESTATE
  img.u32(msg(0) + 48, 2).u32(msg(0) + 52, 5).u16(msg(0) + 56, 0x73).u32(msg(0) + 58, 1);
  img.u32(msg(1), 0x999).u64(msg(1) + 24, 3).u32(msg(1) + 12, 400).u32(msg(1) + 16, 0x9);  // unknown id
  const auto path = tmp.file("linux.img");
  write_file(path, img.bytes());

  const json j = inspect_ok(path);
  const auto& messages = j["queues"][2]["messages"];
  BOOST_TEST_REQUIRE(messages.size() == 3u);
  BOOST_TEST(j["queues"][2]["pending"] == 3);
  BOOST_TEST(messages[0]["id"] == "CHIPSET_INIT");
  BOOST_TEST(messages[0]["message_handle"] == 1);
  BOOST_TEST(messages[0]["flags"]["response_expected"] == true);
  BOOST_TEST(messages[0]["flags"]["failed"] == false);
  BOOST_TEST(messages[0]["packet"]["features"] == 2);
  BOOST_TEST(messages[1]["id"] == "DEVICE_CHANGESTATE");
  BOOST_TEST(messages[1]["packet"]["bus_no"] == 2);
  BOOST_TEST(messages[1]["packet"]["dev_no"] == 5);
  BOOST_TEST(messages[1]["packet"]["state"] == 0x73);
  BOOST_TEST(messages[1]["packet"]["flags"]["phys_device"] == true);
  BOOST_TEST(messages[2]["id"] == 0x999);  // unknown ids stay numbers
  BOOST_TEST(messages[2]["completion_status"] == 400);
  BOOST_TEST(messages[2]["flags"]["failed"] == true);
  BOOST_TEST(messages[2]["flags"]["test_message"] == true);
}

BOOST_AUTO_TEST_CASE(unknown_type_uses_queues_option) {
  TempDir tmp;
  visorlab::test::ImageBuilder img(4096);
  img.header(4096, {0xAA}, 128, 3).queue(128, 256, 32, 4, 2, 0);
  const auto path = tmp.file("unknown.img");
  write_file(path, img.bytes());
  json j = inspect_ok(path);
  BOOST_TEST(j["type"].is_null());
  BOOST_TEST(j["queues"].empty());
  j = inspect_ok(path, {"--queues", "1"});
  BOOST_TEST_REQUIRE(j["queues"].size() == 1u);
  BOOST_TEST(j["queues"][0]["pending"] == 2);
  BOOST_TEST(j["queues"][0]["index"] == 0);
}

BOOST_AUTO_TEST_CASE(corrupted_images_exit_2_naming_check_and_offset) {
  TempDir tmp;
  const auto good = tmp.file("good.img");
  BOOST_REQUIRE(run({bin("visorlab"), "channel", "create", "--type", "vhba", "--out", good}).exit_code == 0);
  const auto pristine = read_file(good);

  struct Case {
    std::size_t offset;
    std::uint8_t value;
    std::string expect;
  };
  const Case cases[] = {
      {0, 0x00, "check 'signature' failed at offset 0"},
      {72, 0x09, "check 'version_id' failed at offset 72"},
      {128 + 61, 0xFF, "check 'head' failed at offset 188"},  // head 0xFF00 >= 256 slots
      {256 + 73, 0xFF, "check 'tail' failed at offset 328"},
      {128 + 48, 0x00, "check 'signal_size' failed at offset 176"},
      {23, 0x7F, "check 'size' failed at offset 16"},
  };
  for (const auto& c : cases) {
    auto bytes = pristine;
    bytes[c.offset] = static_cast<std::byte>(c.value);
    if (c.offset == 128 + 48) bytes[c.offset + 1] = bytes[c.offset + 2] = std::byte{0};  // whole u32 zero
    const auto path = tmp.file("bad.img");
    write_file(path, bytes);
    const auto r = run({bin("visorlab"), "channel", "inspect", path});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(r.err.find(c.expect) != std::string::npos, r.err);
    BOOST_TEST(r.err.find(path) != std::string::npos);
    BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line
  }
  // Truncated file: fewer bytes than a header.
  const auto tiny = tmp.file("tiny.img");
  write_file(tiny, std::vector<std::byte>(pristine.begin(), pristine.begin() + 50));
  const auto r = run({bin("visorlab"), "channel", "inspect", tiny});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("mapping_size") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_and_help_exits_0) {
  TempDir tmp;
  auto r = run({bin("visorlab"), "channel", "inspect", tmp.file("missing.img")});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("missing.img") != std::string::npos);
  r = run({bin("visorlab"), "channel", "create", "--type", "floppy", "--out", tmp.file("x")});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("floppy") != std::string::npos);
  r = run({bin("visorlab"), "channel", "create", "--type", "vhba", "--out", tmp.file("no/such/dir/x")});
  BOOST_TEST(r.exit_code == 2);
  r = run({bin("visorlab"), "nonsense"});
  BOOST_TEST(r.exit_code == 2);
  for (auto args : {std::vector<std::string>{"--help"}, {"channel", "--help"}, {"channel", "inspect", "--help"},
                    {"channel", "create", "--help"}}) {
    args.insert(args.begin(), bin("visorlab"));
    r = run(args);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find("Usage") != std::string::npos);
  }
  r = run({bin("visorlab"), "--version"});
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(r.out.rfind("visorlab " VISORLAB_VERSION, 0) == 0, r.out);
}
