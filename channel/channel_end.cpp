#include "channel/channel_end.hpp"

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
  explicit TcpEnd(std::unique_ptr<tcp::TcpEndpoint> endpoint) : endpoint_(std::move(endpoint)) {}
  Channel& channel() override { return endpoint_->channel(); }
  std::string_view backing() const override { return "tcp"; }
  tcp::TcpEndpoint& endpoint() { return *endpoint_; }

 private:
  std::unique_ptr<tcp::TcpEndpoint> endpoint_;
};

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
                                                          std::move(producers), {}, std::move(on_event)));
}

std::unique_ptr<ChannelEnd> open_service_end(const Placement& placement, const std::string& name,
                                             const Expect& expect, tcp::QueueProducers producers,
                                             const tcp::Address& guest_at, TransportHandler on_event) {
  if (placement.same_host()) return attach_shared_end(name, expect);
  return std::make_unique<TcpEnd>(tcp::TcpEndpoint::attach(guest_at, name, expect, tcp::Side::service,
                                                           std::move(producers), {}, std::move(on_event)));
}

std::unique_ptr<ChannelEnd> create_shared_end(const std::string& name, const ChannelSpec& spec) {
  Region region = Region::create_shared(shm_name(name), channel_size(spec));
  Channel channel = Channel::format(region.map(), spec);
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
