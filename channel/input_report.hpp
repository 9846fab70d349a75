// Keyboard and mouse channels (visorinput): one queue of 16-byte input reports
// carrying seq_no, so loss and reordering across recovery are detectable.
#pragma once

#include <cstddef>
#include <cstdint>

namespace visorlab::channel::input {

enum class Action : std::uint16_t {
  xy_motion = 1, mouse_button_down = 2, mouse_button_up = 3, mouse_button_click = 4,
  mouse_button_dclick = 5, wheel_rotate_away = 6, wheel_rotate_toward = 7,
  key_down = 64, key_up = 65, set_locking_key_state = 66, key_down_up = 67,
};

struct __attribute__((packed)) Activity {
  Action action;
  std::uint16_t arg1;
  std::uint16_t arg2;
  std::uint16_t arg3;
};
static_assert(sizeof(Activity) == 8);

struct __attribute__((packed)) Report {
  std::uint64_t seq_no;
  Activity activity;
};
static_assert(offsetof(Report, activity) == 8);
static_assert(sizeof(Report) == 16);

// visor_input_channel_data at 128: report count, then mouse resolution or
// keyboard flags.
struct __attribute__((packed)) ChannelData {
  std::uint32_t n_input_reports;
  union __attribute__((packed)) {
    struct __attribute__((packed)) {
      std::uint16_t x_res;
      std::uint16_t y_res;
    } mouse;
    std::uint32_t keyboard_flags;
  };
};
static_assert(sizeof(ChannelData) == 8);

inline constexpr std::uint64_t kDataOffset = 128;
inline constexpr std::uint64_t kQueueHeaderOffset = 136;  // ch_space_offset
inline constexpr std::uint64_t kReportsOffset = 264;
inline constexpr std::uint32_t kReportSlots = 50;          // the s-Par input channel's pool
inline constexpr std::uint64_t kChannelBytes = 4096;
static_assert(kDataOffset + sizeof(ChannelData) == kQueueHeaderOffset);
static_assert(kReportsOffset == kQueueHeaderOffset + 128);
static_assert(kReportsOffset + kReportSlots * sizeof(Report) <= kChannelBytes);

}  // namespace visorlab::channel::input
