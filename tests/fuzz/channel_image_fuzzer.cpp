// libFuzzer target for channel images as `visorlab channel inspect` and a
// driver's attach see them (channel/inspect.hpp): any bytes, as a channel of
// the type their header names or with a forced queue count. The only way to
// refuse is a ChannelError; every offset and length read from the image is
// another partition's to write, so a crash or an out-of-bounds read is a finding.
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "channel/channel_error.hpp"
#include "channel/inspect.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // Byte 0: 0 lets the type decide the queue count, 1..8 forces it.
  const std::uint8_t forced = data[0] % 9;
  std::vector<std::byte> image(size - 1);  // its own buffer: ASan sees every byte past it
  if (!image.empty()) std::memcpy(image.data(), data + 1, image.size());
  try {
    const auto j = visorlab::channel::inspect_image(image, forced ? std::optional<std::uint32_t>(forced) : std::nullopt);
    (void)j.dump();
  } catch (const visorlab::channel::ChannelError&) {
  }
  return 0;
}
