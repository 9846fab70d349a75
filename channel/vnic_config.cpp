#include "channel/vnic_config.hpp"

#include <cstddef>
#include <cstring>

namespace visorlab::channel::io {

Mac mac_for(const std::string& device) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : device) h = (h ^ static_cast<std::uint8_t>(c)) * 1099511628211ull;
  Mac mac{0x02};  // locally administered, unicast
  for (std::size_t i = 1; i < mac.size(); ++i) mac[i] = static_cast<std::uint8_t>(h >> (8 * i));
  return mac;
}

int write_vnic_config(Channel& channel, const Mac& mac, std::uint32_t num_rcv_bufs, std::uint32_t mtu) {
  VnicData data{};
  if (const int rc = channel.read(offsetof(IoChannel, vnic), &data, sizeof data); rc != 0) return rc;
  std::memcpy(data.macaddr, mac.data(), mac.size());
  data.num_rcv_bufs = num_rcv_bufs;
  data.mtu = mtu;
  return channel.write(offsetof(IoChannel, vnic), &data, sizeof data);
}

}  // namespace visorlab::channel::io
