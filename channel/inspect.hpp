// Decoding a channel image to JSON for `visorlab channel inspect`: the header
// and every queue header by their spec names, and for a controlvm channel the
// pending messages in queue order.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include <nlohmann/json.hpp>

namespace visorlab::channel {

// Validates the image (as the driver of its type would, when the type GUID is
// known) and describes it. The queue count comes from the type or from
// `queue_count`, which wins. Throws ChannelError on an invalid image.
nlohmann::json inspect_image(std::span<std::byte> image, std::optional<std::uint32_t> queue_count = {});

}  // namespace visorlab::channel
