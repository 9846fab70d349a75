// `visorlab channel create|inspect`: write a valid empty channel image, or
// decode and validate one.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "channel/channel.hpp"
#include "channel/channel_types.hpp"
#include "channel/inspect.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"

namespace visorlab::cli {
namespace {

namespace ch = visorlab::channel;

// Images larger than this are refused rather than read into memory.
constexpr std::uintmax_t kMaxImageBytes = std::uintmax_t{1} << 30;

int create_image(const std::string& type_name, const std::string& out) {
  const ch::ChannelType* type = ch::find_type(type_name);
  const ch::ChannelSpec spec = type->spec();
  std::vector<std::byte> bytes(ch::channel_size(spec));
  ch::Channel::format(ch::Mapping::borrow(bytes), spec);

  // Write beside the target and rename, so a failure never leaves half an image.
  const std::string tmp = out + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!file.flush()) {
      std::cerr << "visorlab channel create: " << out << ": cannot write\n";
      std::filesystem::remove(tmp);
      return kBadInput;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    std::cerr << "visorlab channel create: " << out << ": " << ec.message() << "\n";
    return kBadInput;
  }
  return kPass;
}

int inspect_file(const std::string& path, std::optional<std::uint32_t> queues) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    std::cerr << "visorlab channel inspect: " << path << ": " << ec.message() << "\n";
    return kBadInput;
  }
  if (size > kMaxImageBytes) {
    std::cerr << "visorlab channel inspect: " << path << ": " << size << " bytes is larger than the "
              << kMaxImageBytes << "-byte limit for a channel image\n";
    return kBadInput;
  }
  std::vector<std::byte> image(size);
  std::ifstream file(path, std::ios::binary);
  if (!file.read(reinterpret_cast<char*>(image.data()), static_cast<std::streamsize>(size))) {
    std::cerr << "visorlab channel inspect: " << path << ": cannot read\n";
    return kBadInput;
  }
  try {
    std::cout << ch::inspect_image(image, queues).dump(2) << "\n";
  } catch (const ch::ChannelError& e) {
    std::cerr << "visorlab channel inspect: " << path << ": invalid channel: " << e.what() << "\n";
    return kBadInput;
  }
  return kPass;
}

}  // namespace

void add_channel_commands(CLI::App& app, Action& action) {
  auto* channel = app.add_subcommand("channel", "Create, decode and validate s-Par channel images");
  channel->require_subcommand(1);

  auto* create = channel->add_subcommand("create", "Write a valid empty channel image of a type");
  auto type = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  create->add_option("--type", *type, "Channel type")
      ->required()
      ->check(CLI::IsMember({"controlvm", "vhba", "vnic", "keyboard", "mouse"}));
  create->add_option("--out", *out, "Image file to write")->required();
  create->callback([&action, type, out] { action = [type, out] { return create_image(*type, *out); }; });

  auto* inspect = channel->add_subcommand("inspect", "Decode a channel image to JSON and validate it");
  auto file = std::make_shared<std::string>();
  auto queues = std::make_shared<std::uint32_t>(0);
  inspect->add_option("FILE", *file, "Channel image")->required();
  auto* queues_opt = inspect->add_option("--queues", *queues, "Number of signal queues (default: from the type GUID)")
                         ->check(CLI::Range(0, 1024));
  inspect->callback([&action, file, queues, queues_opt] {
    std::optional<std::uint32_t> count;
    if (queues_opt->count() > 0) count = *queues;
    action = [file, count] { return inspect_file(*file, count); };
  });
}

}  // namespace visorlab::cli
