#include "channel/end/channel_end.hpp"

#include <spdlog/spdlog.h>

#include "channel/log_throttle.hpp"

#include <optional>

namespace visorlab::channel {
namespace {

class SharedMemoryEnd final : public ChannelEnd {
 public:
  SharedMemoryEnd(Region region, Channel channel) : region_(std::move(region)), channel_(std::move(channel)) {}
  Channel& channel() override { return channel_; }
  std::string_view backing() const override { return "shm"; }

 private:
  Region region_;  // the guest end owns the name and removes it when closed
  Channel channel_;
};

class TcpEnd final : public ChannelEnd {
 public:
  // `attached_to`: the guest's address for a service end; none for the guest
  // end, which listens.
  explicit TcpEnd(std::unique_ptr<tcp::TcpEndpoint> endpoint, std::optional<tcp::Address> attached_to = {})
      : endpoint_(std::move(endpoint)), attached_to_(std::move(attached_to)) {}
  Channel& channel() override { return endpoint_->channel(); }
  std::string_view backing() const override { return "tcp"; }
  tcp::TcpEndpoint& endpoint() { return *endpoint_; }
  bool link_up() const override { return endpoint_->connected(); }

  bool reconnect(std::chrono::milliseconds timeout) override {
    if (!attached_to_) return endpoint_->wait_connected(timeout);  // the peer comes back to us
    if (endpoint_->connected()) return true;
    try {
      endpoint_->reattach(*attached_to_, timeout);
      return true;
    } catch (const std::exception& e) {
      if (std::uint64_t left_out = 0; reattach_warnings_.allow(left_out))
        spdlog::warn("channel end: re-attach to {} failed: {}{}", attached_to_->text(), e.what(),
                     left_out ? " (" + std::to_string(left_out) + " more since the last one said)" : "");
      return false;
    }
  }

 private:
  std::unique_ptr<tcp::TcpEndpoint> endpoint_;
  std::optional<tcp::Address> attached_to_;
  LogThrottle reattach_warnings_;  // retried every poll across a cut
};

tcp::LinkOptions link_to(const std::string& peer_host) {
  tcp::LinkOptions options;
  options.peer_host = peer_host;
  return options;
}

}  // namespace

std::string shm_name(std::string_view channel_name) {
  std::string name = "visorlab-";
  for (char c : channel_name) name += (c == '/' ? '_' : c);
  return name;
}

std::unique_ptr<ChannelEnd> open_guest_end(const Placement& placement, const std::string& name,
                                           const ChannelSpec& spec, tcp::QueueProducers producers,
                                           TransportHandler on_event) {
  if (placement.same_host()) return create_shared_end(name, spec);
  return std::make_unique<TcpEnd>(tcp::TcpEndpoint::serve(placement.guest_listen, name, spec, tcp::Side::guest,
                                                          std::move(producers), link_to(placement.service_host),
                                                          std::move(on_event)));
}

std::unique_ptr<ChannelEnd> open_service_end(const Placement& placement, const std::string& name,
                                             const Expect& expect, tcp::QueueProducers producers,
                                             const tcp::Address& guest_at, TransportHandler on_event) {
  if (placement.same_host()) return attach_shared_end(name, expect);
  return std::make_unique<TcpEnd>(tcp::TcpEndpoint::attach(guest_at, name, expect, tcp::Side::service,
                                                           std::move(producers), link_to(placement.guest_host),
                                                           std::move(on_event)),
                                  guest_at);
}

std::unique_ptr<ChannelEnd> create_shared_end(const std::string& name, const ChannelSpec& spec) {
  Region region = Region::create_shared(shm_name(name), size_with_doorbell(channel_size(spec)));
  Channel channel = Channel::format(region.map(), spec, true);  // a new shm object is all zero
  return std::make_unique<SharedMemoryEnd>(std::move(region), std::move(channel));
}

std::unique_ptr<ChannelEnd> attach_shared_end(const std::string& name, const Expect& expect) {
  Region region = Region::open_shared(shm_name(name));
  Channel channel = Channel::attach(region.map(), expect);
  return std::make_unique<SharedMemoryEnd>(std::move(region), std::move(channel));
}

std::optional<tcp::Address> listen_address(ChannelEnd& end) {
  if (auto* t = dynamic_cast<TcpEnd*>(&end)) return t->endpoint().address();
  return std::nullopt;
}

}  // namespace visorlab::channel
