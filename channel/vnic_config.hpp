// A vnic channel's configuration (VnicData in iochannel.hpp): the MAC a
// device is given and writing it, with the receive buffers and MTU, into the
// channel before the guest's driver probes (it reads them then). Whoever
// creates a vnic channel does this: the guest end in visorlab, a bench's
// stand-in elsewhere.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "channel/channel.hpp"
#include "channel/iochannel.hpp"

namespace visorlab::channel::io {

using Mac = std::array<std::uint8_t, kMacAddrLen>;

// A vnic's MAC, derived from its device name (FNV-1a: stable across runs and
// hosts, unique per topology), locally administered and unicast.
Mac mac_for(const std::string& device);

// Returns 0 or the channel's -errno.
int write_vnic_config(Channel& channel, const Mac& mac, std::uint32_t num_rcv_bufs = kVnicRcvBufs,
                      std::uint32_t mtu = 1500);

}  // namespace visorlab::channel::io
