// The I/O channel shared by vhba and vnic (spec §5): header, cmd and rsp queue
// headers, per-type data, client string; and the uiscmdrsp signal carried in
// both queues. Layouts follow the kernel's iochannel.h (packed, x86_64
// pointers stored as u64 since they are only opaque cookies here).
#pragma once

#include <cstddef>
#include <cstdint>

#include "channel/channel_header.hpp"
#include "channel/guid.hpp"

namespace visorlab::channel::io {

inline constexpr std::uint32_t kVhbaVersionId = 2;
inline constexpr std::uint32_t kVnicVersionId = 2;

enum Queue : std::uint32_t { to_iopart = 0, from_iopart = 1 };  // cmd, rsp
inline constexpr std::uint32_t kQueueCount = 2;

inline constexpr std::size_t kMaxCmndSize = 16;
inline constexpr std::size_t kMaxSenseSize = 64;
inline constexpr std::size_t kMaxPhysInfo = 64;
inline constexpr std::size_t kMaxClientString = 1024;
inline constexpr std::size_t kMacAddrLen = 6;
inline constexpr std::size_t kEthHeaderLen = 14;
inline constexpr std::size_t kRcvPostBufSize = 4032;
inline constexpr std::size_t kMaxNetRcvChain = 5;
inline constexpr std::size_t kMaxPendingScsi = 128;  // visorhba's limit

enum class CmdType : std::uint8_t { scsi = 1, net = 2, scsitaskmgmt = 3, notifyguest = 4 };

enum class DataDir : std::uint32_t { bidirectional = 0, to_device = 1, from_device = 2, none = 3 };

enum class TaskMgmt : std::uint32_t { abort_task = 1, bus_reset = 2, lun_reset = 3, target_reset = 4 };

enum class NetType : std::uint32_t {
  rcv_post = 0, rcv = 1, xmit = 2, xmit_done = 3, rcv_enbdis = 4, rcv_enbdis_ack = 5,
  rcv_promisc = 6, connect_status = 7, macaddr = 8, macaddr_ack = 9,
};

struct __attribute__((packed)) VhbaWwnn {
  std::uint32_t wwnn1;
  std::uint32_t wwnn2;
};

struct __attribute__((packed)) VhbaConfigMax {
  std::uint32_t max_channel;
  std::uint32_t max_id;
  std::uint32_t max_lun;
  std::uint32_t cmd_per_lun;
  std::uint32_t max_io_size;
};
static_assert(sizeof(VhbaConfigMax) == 20);

struct __attribute__((packed)) VhbaData {
  VhbaWwnn wwnn;
  VhbaConfigMax max;
};
static_assert(sizeof(VhbaData) == 28);

struct __attribute__((packed)) VnicData {
  std::uint8_t macaddr[kMacAddrLen];
  std::uint32_t num_rcv_bufs;
  std::uint32_t mtu;
  Guid zone_guid;
};
static_assert(sizeof(VnicData) == 30);
static_assert(offsetof(VnicData, num_rcv_bufs) == 6);
static_assert(offsetof(VnicData, mtu) == 10);
static_assert(offsetof(VnicData, zone_guid) == 14);

struct __attribute__((packed)) IoChannel {
  ChannelHeader channel_header;
  SignalQueueHeader cmd_q;
  SignalQueueHeader rsp_q;
  union __attribute__((packed)) {
    VhbaData vhba;
    VnicData vnic;
  };
  std::uint8_t client_string[kMaxClientString];
};
static_assert(offsetof(IoChannel, cmd_q) == 128);
static_assert(offsetof(IoChannel, rsp_q) == 256);
static_assert(offsetof(IoChannel, vhba) == 384);
static_assert(offsetof(IoChannel, vnic) == 384);
static_assert(offsetof(IoChannel, client_string) == 414);
static_assert(sizeof(IoChannel) == 1438);

struct __attribute__((packed)) GuestPhysInfo {
  std::uint64_t address;
  std::uint64_t length;
};
static_assert(sizeof(GuestPhysInfo) == 16);

struct __attribute__((packed)) PhysInfo {
  std::uint64_t pi_pfn;
  std::uint16_t pi_off;
  std::uint16_t pi_len;
};
static_assert(sizeof(PhysInfo) == 12);

struct __attribute__((packed)) ScsiDest {
  std::uint32_t channel;
  std::uint32_t id;
  std::uint32_t lun;
};
static_assert(sizeof(ScsiDest) == 12);

struct __attribute__((packed)) Scsi {
  std::uint64_t handle;  // echoed back in the response
  std::uint8_t cmnd[kMaxCmndSize];
  std::uint32_t bufflen;
  std::uint16_t guest_phys_entries;  // ≤ kMaxPhysInfo; never trusted unchecked
  GuestPhysInfo gpi_list[kMaxPhysInfo];
  DataDir data_dir;
  ScsiDest vdest;
  std::int32_t linuxstat;  // non-zero: sensebuf is valid
  std::uint8_t scsistat;
  std::uint8_t addlstat;
  std::uint8_t sensebuf[kMaxSenseSize];
  std::uint64_t vdisk;
  std::int32_t no_disk_result;
};
static_assert(offsetof(Scsi, cmnd) == 8);
static_assert(offsetof(Scsi, bufflen) == 24);
static_assert(offsetof(Scsi, guest_phys_entries) == 28);
static_assert(offsetof(Scsi, gpi_list) == 30);
static_assert(offsetof(Scsi, data_dir) == 1054);
static_assert(offsetof(Scsi, vdest) == 1058);
static_assert(offsetof(Scsi, linuxstat) == 1070);
static_assert(offsetof(Scsi, scsistat) == 1074);
static_assert(offsetof(Scsi, addlstat) == 1075);
static_assert(offsetof(Scsi, sensebuf) == 1076);
static_assert(offsetof(Scsi, vdisk) == 1140);
static_assert(offsetof(Scsi, no_disk_result) == 1148);
static_assert(sizeof(Scsi) == 1152);

// The kernel's lincsum is an unpacked struct inside a packed one: it keeps its
// natural padding, spelled out here.
struct __attribute__((packed)) LinCsum {
  std::uint8_t valid;
  std::uint8_t hrawoffv;
  std::uint8_t nhrawoffv;
  std::uint8_t pad0;
  std::uint16_t protocol;  // big-endian on the wire
  std::uint8_t pad1[2];
  std::uint32_t csum;
  std::uint32_t hrawoff;
  std::uint32_t nhrawoff;
};
static_assert(sizeof(LinCsum) == 20);
static_assert(offsetof(LinCsum, protocol) == 4);
static_assert(offsetof(LinCsum, csum) == 8);

struct __attribute__((packed)) NetXmit {
  std::int32_t len;
  std::int32_t num_frags;
  PhysInfo frags[kMaxPhysInfo];
  std::uint8_t ethhdr[kEthHeaderLen];
  LinCsum lincsum;
};
static_assert(offsetof(NetXmit, frags) == 8);
static_assert(offsetof(NetXmit, ethhdr) == 776);
static_assert(offsetof(NetXmit, lincsum) == 790);
static_assert(sizeof(NetXmit) == 810);

struct __attribute__((packed)) NetXmitDone {
  std::uint32_t xmt_done_result;
};

struct __attribute__((packed)) NetRcvPost {
  PhysInfo frag;
  std::uint64_t unique_num;
};
static_assert(offsetof(NetRcvPost, unique_num) == 12);

struct __attribute__((packed)) NetRcv {
  std::uint32_t rcv_done_len;
  std::uint8_t numrcvbufs;
  std::uint64_t rcvbuf[kMaxNetRcvChain];
  std::uint64_t unique_num;
  std::uint32_t rcvs_dropped_delta;
};
static_assert(offsetof(NetRcv, rcvbuf) == 5);
static_assert(offsetof(NetRcv, unique_num) == 45);
static_assert(offsetof(NetRcv, rcvs_dropped_delta) == 53);
static_assert(sizeof(NetRcv) == 57);

struct __attribute__((packed)) NetEnbDis {
  std::uint64_t context;
  std::uint16_t enable;
};
static_assert(offsetof(NetEnbDis, enable) == 8);

struct __attribute__((packed)) NetMacAddr {
  std::uint64_t context;
  std::uint8_t macaddr[kMacAddrLen];
};
static_assert(sizeof(NetMacAddr) == 14);

struct __attribute__((packed)) Net {
  NetType type;
  std::uint64_t buf;
  union __attribute__((packed)) {
    NetXmit xmt;
    NetXmitDone xmtdone;
    NetRcvPost rcvpost;
    NetRcv rcv;
    NetEnbDis enbdis;
    NetMacAddr macaddr;
  };
};
static_assert(offsetof(Net, buf) == 4);
static_assert(offsetof(Net, xmt) == 12);
static_assert(sizeof(Net) == 822);

struct __attribute__((packed)) ScsiTaskMgmt {
  TaskMgmt tasktype;
  ScsiDest vdest;
  std::uint64_t handle;
  std::uint64_t notify_handle;
  std::uint64_t notifyresult_handle;
  std::int8_t result;
};
static_assert(offsetof(ScsiTaskMgmt, vdest) == 4);
static_assert(offsetof(ScsiTaskMgmt, handle) == 16);
static_assert(offsetof(ScsiTaskMgmt, notify_handle) == 24);
static_assert(offsetof(ScsiTaskMgmt, notifyresult_handle) == 32);
static_assert(offsetof(ScsiTaskMgmt, result) == 40);
static_assert(sizeof(ScsiTaskMgmt) == 41);

struct __attribute__((packed)) DiskNotify {
  std::uint8_t add;
  std::uint64_t v_hba;
  std::uint32_t channel;
  std::uint32_t id;
  std::uint32_t lun;
};
static_assert(sizeof(DiskNotify) == 21);

struct __attribute__((packed)) CmdRsp {
  CmdType cmdtype;
  union __attribute__((packed)) {
    Scsi scsi;
    Net net;
    ScsiTaskMgmt scsitaskmgmt;
    DiskNotify disknotify;
  };
  std::uint64_t private_data;
  std::uint64_t next;
  std::uint64_t activeq_next;
  std::uint64_t activeq_prev;
};
static_assert(offsetof(CmdRsp, scsi) == 1);
static_assert(offsetof(CmdRsp, net) == 1);
static_assert(offsetof(CmdRsp, private_data) == 1153);
static_assert(offsetof(CmdRsp, activeq_prev) == 1177);
static_assert(sizeof(CmdRsp) == 1185);

// Slot size of both I/O queues: the struct rounded up to 64 (SIZEOF_CMDRSP).
inline constexpr std::uint32_t kSignalSize = 1216;
static_assert(kSignalSize == (sizeof(CmdRsp) + 63) / 64 * 64);

// vhba data buffers: the I/O channel's data area after the slots holds one
// buffer of kVhbaBufferSize per command visorhba may have pending; a command's
// gpi_list entry is {byte offset in the channel, length}.
inline constexpr std::uint32_t kVhbaBufferSize = 64 * 1024;
inline constexpr std::uint64_t kVhbaBufferPool = kMaxPendingScsi * kVhbaBufferSize;

// vnic data buffers: the data area after the slots, from the next page
// boundary, holds one page per buffer: receive buffers (a post offers
// kRcvPostBufSize of its page), then transmit buffers. A frag names a page as
// {pi_pfn = byte offset in the channel / kVnicPageSize, pi_off, pi_len} and
// never crosses it.
inline constexpr std::uint64_t kVnicPageSize = 4096;
inline constexpr std::uint32_t kVnicRcvBufs = 64;   // num_rcv_bufs a new vnic channel advertises
inline constexpr std::uint32_t kVnicXmitBufs = 64;  // > visornic's max outstanding xmits for 64 rcv bufs (19)
inline constexpr std::uint64_t kVnicBufferPool = (kVnicRcvBufs + kVnicXmitBufs) * kVnicPageSize;

// Slots follow the fixed part, 64-aligned (the kernel's SIZEOF_PROTOCOL).
inline constexpr std::uint64_t kSlotsOffset = 1472;
static_assert(kSlotsOffset == (sizeof(IoChannel) + 63) / 64 * 64);

}  // namespace visorlab::channel::io
