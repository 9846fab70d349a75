// The console partition end to end on one host: a guest (chipset, bus,
// visorinput) bound through the real command partition, and the console
// partition's backends on the same keyboard and mouse channels in shared
// memory. The guest's visorinput judges every run by seq_no (lost,
// out_of_order); the pause guards judge who touched a paused channel.
#define BOOST_TEST_MODULE actors_console
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstddef>
#include <map>
#include <sstream>

#include "actors/bus/virtual_bus.hpp"
#include "actors/chipset/chipset.hpp"
#include "actors/command/command_partition.hpp"
#include "actors/drivers/visorinput.hpp"
#include "actors/service/console_partition.hpp"
#include "channel/channel_types.hpp"
#include "tests/actors/guest_harness.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
namespace in = visorlab::channel::input;
using visorlab::bus::DeviceState;
using visorlab::command::CommandPartition;
using visorlab::drivers::VisorInput;
using visorlab::service::ConsolePartition;
using visorlab::service::InputBackend;

namespace {

struct DeviceSpec {
  std::string name;  // the console partition's name for it
  ch::ChannelKind kind;
  std::uint32_t dev_no;  // on bus 1, the console partition's
  std::uint64_t addr;    // channel_addr: picks the shared-memory name
};
const DeviceSpec kKeyboard{"g0/keyboard0", ch::ChannelKind::keyboard, 0, 1};
const DeviceSpec kMouse{"g0/mouse0", ch::ChannelKind::mouse, 1, 2};

std::string channel_name(std::uint64_t addr) {
  return "consoletest" + std::to_string(getpid()) + "-ch" + std::to_string(addr);
}

// "" when `seen` is exactly seq_no first..last in order (and, with
// `content`, each carrying the backend's pattern); else what is wrong.
std::string check_sequence(const std::vector<in::Report>& seen, ch::ChannelKind kind, std::uint64_t first,
                           std::uint64_t last, bool content = true) {
  std::ostringstream out;
  if (seen.size() != last - first + 1) out << "saw " << seen.size() << " reports, expected " << last - first + 1;
  for (std::size_t i = 0; i < seen.size() && out.str().empty(); ++i) {
    const in::Report r = seen[i];
    if (r.seq_no != first + i) out << "report " << i << " has seq_no " << r.seq_no << ", expected " << first + i;
    const in::Activity want = InputBackend::pattern(kind, r.seq_no);
    if (content && (r.activity.action != want.action || r.activity.arg1 != want.arg1 || r.activity.arg2 != want.arg2))
      out << "report seq_no " << r.seq_no << " carries the wrong activity";
  }
  return out.str();
}

// One guest with a keyboard and a mouse on bus 1, and the console partition
// serving both. The channels are created as the guest side would (owners);
// the console attaches its own end, which can die and come back.
struct World {
  World()
      : input([this](const visorlab::bus::Device& d, const in::Report& r) { seen[d.name()].push_back(r); }),
        bus([](const cvm::CreateDevice& p, const ch::Expect& expect) {
          return ch::attach_shared_end(channel_name(p.channel_addr), expect);
        }),
        chipset(controlvm.guest_end, bus),
        commands(controlvm.command_end) {
    bus.register_driver(input);
    BOOST_REQUIRE(command(cvm::Id::bus_create, CommandPartition::bus(1)) == 0u);
    for (const DeviceSpec* d : {&kKeyboard, &kMouse}) {
      owners[d->name] = ch::create_shared_end(channel_name(d->addr), ch::type_of(d->kind).spec());
      const ch::Guid type = ch::type_of(d->kind).guid;
      BOOST_REQUIRE(command(cvm::Id::device_create, CommandPartition::device(1, d->dev_no, type, d->addr, 4096)) == 0u);
      BOOST_REQUIRE(device(*d).driver_name() == "visorinput");
      connect(*d);
    }
  }

  // The console partition (re)attaches its end of the device's channel.
  InputBackend& connect(const DeviceSpec& d, std::uint64_t first_seq = 1) {
    console_ends[d.name] = ch::attach_shared_end(channel_name(d.addr), ch::type_of(d.kind).expect());
    return console.attach(d.name, console_ends[d.name]->channel(), d.kind, first_seq);
  }
  // The console partition's process dies: its backend and its mapping go;
  // what it had put in the channel stays.
  void crash(const DeviceSpec& d) {
    BOOST_REQUIRE(console.detach(d.name));
    console_ends.erase(d.name);
  }

  std::uint32_t command(cvm::Id id, cvm::Packet p) {
    return visorlab::test::run_command(commands, chipset, id, p).status;
  }
  std::uint32_t change_state(const DeviceSpec& d, std::uint16_t state) {
    return command(cvm::Id::device_changestate, CommandPartition::change_state(1, d.dev_no, state));
  }

  visorlab::bus::Device& device(const DeviceSpec& d) {
    auto* dev = bus.find(1, d.dev_no);
    BOOST_REQUIRE(dev);
    return *dev;
  }
  std::vector<in::Report>& reports(const DeviceSpec& d) { return seen[device(d).name()]; }
  visorlab::drivers::InputCounts counts(const DeviceSpec& d) { return VisorInput::counts(device(d)); }
  InputBackend& backend(const DeviceSpec& d) {
    auto* b = console.find(d.name);
    BOOST_REQUIRE(b);
    return *b;
  }
  // The queue header as the channel's memory holds it (through the owner's
  // end, which is never paused).
  ch::SignalQueueHeader queue_header(const DeviceSpec& d) { return owners[d.name]->channel().queue_header(0); }

  // Console and guest take turns until `done` holds (bounded).
  template <typename Pred>
  bool pump(Pred done, int rounds = 1000) {
    for (int i = 0; i < rounds; ++i) {
      if (done()) return true;
      console.poll();
      bus.poll();
    }
    return done();
  }
  bool deliver(const DeviceSpec& d, std::size_t total) {
    return pump([&] { return reports(d).size() >= total; });
  }

  // Declaration order is destruction order reversed: backends go before the
  // ends they use, drivers after the bus that calls them.
  std::map<std::string, std::unique_ptr<ch::ChannelEnd>> owners;
  std::map<std::string, std::unique_ptr<ch::ChannelEnd>> console_ends;
  ConsolePartition console;
  visorlab::test::ControlvmPair controlvm;
  std::map<std::string, std::vector<in::Report>> seen;  // by vbus name
  VisorInput input;
  visorlab::bus::VirtualBus bus;
  visorlab::chipset::Chipset chipset;
  CommandPartition commands;
};

void require_clean(World& w, const DeviceSpec& d, std::uint64_t delivered) {
  const auto c = w.counts(d);
  BOOST_TEST(c.delivered == delivered);
  BOOST_TEST(c.lost == 0u);
  BOOST_TEST(c.out_of_order == 0u);
  BOOST_TEST(w.device(d).channel()->guard().violations() == 0u);
  BOOST_TEST(w.console_ends[d.name]->channel().guard().violations() == 0u);
}

}  // namespace

BOOST_AUTO_TEST_CASE(keyboard_and_mouse_reports_arrive_with_continuous_seq_no) {
  World w;
  BOOST_TEST(w.console.names() == (std::vector<std::string>{"g0/keyboard0", "g0/mouse0"}));
  w.console.produce_all(200);  // four times what a queue holds
  BOOST_REQUIRE(w.pump([&] { return w.reports(kKeyboard).size() >= 200 && w.reports(kMouse).size() >= 200; }));
  for (const DeviceSpec* d : {&kKeyboard, &kMouse}) {
    BOOST_TEST_CONTEXT(d->name) {
      BOOST_TEST(check_sequence(w.reports(*d), d->kind, 1, 200) == "");
      require_clean(w, *d, 200);
      const auto c = w.backend(*d).counts();
      BOOST_TEST(c.produced == 200u);
      BOOST_TEST(c.delivered == 200u);
      BOOST_TEST(c.held == 0u);
      BOOST_TEST(c.dropped == 0u);
      BOOST_TEST(w.backend(*d).next_seq() == 201u);
    }
  }
  // The patterns really differ: keyboard keys, mouse motion and buttons.
  BOOST_TEST((w.reports(kKeyboard)[0].activity.action == in::Action::key_down));
  BOOST_TEST((w.reports(kKeyboard)[1].activity.action == in::Action::key_up));
  BOOST_TEST((w.reports(kMouse)[0].activity.action == in::Action::xy_motion));
  BOOST_TEST((w.reports(kMouse)[1].activity.action == in::Action::mouse_button_down));
  const auto totals = w.console.totals();
  BOOST_TEST(totals.produced == 400u);
  BOOST_TEST(totals.delivered == 400u);
}

BOOST_AUTO_TEST_CASE(seq_no_stays_continuous_across_a_pause_and_nothing_touches_the_paused_channel) {
  for (const DeviceSpec* d : {&kKeyboard, &kMouse}) {
    BOOST_TEST_CONTEXT(d->name) {
      World w;
      w.console.produce(d->name, 30);
      BOOST_REQUIRE(w.deliver(*d, 30));

      // The command side pauses the guest's device and tells the console.
      BOOST_TEST(w.change_state(*d, cvm::segment::standby) == 0u);
      BOOST_TEST((w.device(*d).state() == DeviceState::paused));
      BOOST_TEST(w.console.pause(d->name));
      BOOST_TEST(w.console_ends[d->name]->channel().paused());  // the console's endpoint is revoked too

      const std::uint64_t sent_before = w.queue_header(*d).num_sent;
      w.console.produce(d->name, 100);  // more than the queue holds
      w.pump([] { return false; }, 50);  // both sides keep polling
      BOOST_TEST(w.reports(*d).size() == 30u);
      BOOST_TEST(w.queue_header(*d).num_sent == sent_before);  // the console inserted nothing
      BOOST_TEST(w.backend(*d).counts().held == 100u);
      BOOST_TEST(w.device(*d).channel()->guard().violations() == 0u);
      BOOST_TEST(w.console_ends[d->name]->channel().guard().violations() == 0u);

      BOOST_TEST(w.change_state(*d, cvm::segment::running) == 0u);
      BOOST_TEST(w.console.resume(d->name));
      BOOST_TEST(!w.console_ends[d->name]->channel().paused());
      BOOST_REQUIRE(w.deliver(*d, 130));
      BOOST_TEST(check_sequence(w.reports(*d), d->kind, 1, 130) == "");
      require_clean(w, *d, 130);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_full_queue_holds_reports_back_in_order) {
  World w;
  const std::uint32_t capacity = w.console_ends[kKeyboard.name]->channel().queue(0).capacity();
  w.console.produce(kKeyboard.name, 500);
  BOOST_TEST(w.backend(kKeyboard).poll() == capacity);  // the guest has not polled yet
  BOOST_TEST(w.backend(kKeyboard).poll() == 0u);        // full: -EIO, everything else waits
  BOOST_TEST(w.backend(kKeyboard).counts().held == 500u - capacity);
  BOOST_TEST(w.backend(kKeyboard).last_error() == 0);  // full is backpressure, not an error
  BOOST_TEST(w.queue_header(kKeyboard).num_overflows >= 1u);

  // A slow guest: it drains only every third round.
  int round = 0;
  BOOST_REQUIRE(w.pump([&] {
    if (++round % 3 != 0) w.console.poll();
    return w.reports(kKeyboard).size() >= 500;
  }));
  BOOST_TEST(check_sequence(w.reports(kKeyboard), kKeyboard.kind, 1, 500) == "");
  require_clean(w, kKeyboard, 500);
  BOOST_TEST(w.backend(kKeyboard).counts().dropped == 0u);
}

BOOST_AUTO_TEST_CASE(a_bounded_backlog_drops_the_oldest_and_the_guest_counts_them_lost) {
  World w;
  w.crash(kKeyboard);  // replaced by a backend with a 10-report backlog
  w.console_ends[kKeyboard.name] = ch::attach_shared_end(channel_name(kKeyboard.addr), ch::type_of(kKeyboard.kind).expect());
  InputBackend small(w.console_ends[kKeyboard.name]->channel(), kKeyboard.kind, 1, 10);
  small.produce(5);
  small.poll();
  w.bus.poll();
  BOOST_REQUIRE(w.reports(kKeyboard).size() == 5u);

  small.produce(25);  // seq 6..30: 6..20 pushed out, 21..30 held
  auto c = small.counts();
  BOOST_TEST(c.produced == 30u);
  BOOST_TEST(c.dropped == 15u);
  BOOST_TEST(c.held == 10u);
  small.poll();
  w.bus.poll();
  c = small.counts();
  BOOST_TEST(c.produced == c.delivered + c.held + c.dropped);
  BOOST_REQUIRE(w.reports(kKeyboard).size() == 15u);
  BOOST_TEST(std::uint64_t{w.reports(kKeyboard)[4].seq_no} == 5u);  // packed: copy out
  BOOST_TEST(std::uint64_t{w.reports(kKeyboard)[5].seq_no} == 21u);
  BOOST_TEST(w.counts(kKeyboard).lost == 15u);  // the drop is visible at the guest
  BOOST_TEST(w.counts(kKeyboard).out_of_order == 0u);
}

BOOST_AUTO_TEST_CASE(a_backend_reattached_after_a_crash_continues_the_sequence_from_the_channel) {
  World w;
  // Mouse: the guest has taken everything; the queue is empty.
  w.console.produce(kMouse.name, 60);
  BOOST_REQUIRE(w.deliver(kMouse, 60));
  BOOST_REQUIRE(w.queue_header(kMouse).head == w.queue_header(kMouse).tail);
  // Keyboard: the crash leaves reports in the queue the guest has not taken.
  w.console.produce(kKeyboard.name, 100);
  w.console.poll();  // 1..49 in
  w.bus.poll();      // the guest takes them
  w.console.poll();  // 50..98 in, 99..100 held
  BOOST_REQUIRE(w.reports(kKeyboard).size() == 49u);
  BOOST_REQUIRE(w.backend(kKeyboard).counts().held == 2u);
  BOOST_REQUIRE(w.owners[kKeyboard.name]->channel().queue(0).pending() == 49u);

  w.crash(kKeyboard);
  w.crash(kMouse);
  // The supervisor knows nothing (keyboard) or something stale (mouse): the
  // channel is authoritative.
  auto& keyboard = w.connect(kKeyboard, 1);
  auto& mouse = w.connect(kMouse, 1000);
  BOOST_TEST((keyboard.resume_from_channel() == InputBackend::Continue::from_channel));
  BOOST_TEST((mouse.resume_from_channel() == InputBackend::Continue::from_channel));
  BOOST_TEST(keyboard.next_seq() == 99u);  // 99 and 100 died with the process
  BOOST_TEST(mouse.next_seq() == 61u);

  w.console.produce(kKeyboard.name, 52);
  w.console.produce(kMouse.name, 40);
  BOOST_REQUIRE(w.deliver(kKeyboard, 150));
  BOOST_REQUIRE(w.deliver(kMouse, 100));
  BOOST_TEST(check_sequence(w.reports(kKeyboard), kKeyboard.kind, 1, 150) == "");
  BOOST_TEST(check_sequence(w.reports(kMouse), kMouse.kind, 1, 100) == "");
  require_clean(w, kKeyboard, 150);
  require_clean(w, kMouse, 100);
}

BOOST_AUTO_TEST_CASE(a_crash_during_a_pause_continues_once_resumed) {
  World w;
  w.console.produce(kKeyboard.name, 20);
  BOOST_REQUIRE(w.deliver(kKeyboard, 20));
  BOOST_TEST(w.change_state(kKeyboard, cvm::segment::standby) == 0u);
  w.console.pause(kKeyboard.name);
  w.console.produce(kKeyboard.name, 5);  // held, then lost with the process

  w.crash(kKeyboard);
  auto& b = w.connect(kKeyboard);
  b.pause();  // the new process is told the device is paused
  BOOST_TEST((b.resume_from_channel() == InputBackend::Continue::deferred));
  w.console.produce(kKeyboard.name, 10);  // numbered 1..10 for now, renumbered before they go in
  w.pump([] { return false; }, 20);
  BOOST_TEST(w.reports(kKeyboard).size() == 20u);
  BOOST_TEST(w.console_ends[kKeyboard.name]->channel().guard().violations() == 0u);

  BOOST_TEST(w.change_state(kKeyboard, cvm::segment::running) == 0u);
  w.console.resume(kKeyboard.name);
  BOOST_REQUIRE(w.deliver(kKeyboard, 30));
  BOOST_TEST(b.next_seq() == 31u);
  BOOST_TEST(check_sequence(w.reports(kKeyboard), kKeyboard.kind, 1, 30, false) == "");
  require_clean(w, kKeyboard, 30);
}

BOOST_AUTO_TEST_CASE(a_planned_restart_passes_next_seq_on) {
  World w;
  w.console.produce(kMouse.name, 70);
  BOOST_REQUIRE(w.deliver(kMouse, 70));
  const auto next = w.console.detach(kMouse.name);
  BOOST_REQUIRE(next);
  BOOST_TEST(*next == 71u);
  w.console_ends.erase(kMouse.name);
  w.connect(kMouse, *next);
  w.console.produce(kMouse.name, 30);
  BOOST_REQUIRE(w.deliver(kMouse, 100));
  BOOST_TEST(check_sequence(w.reports(kMouse), kMouse.kind, 1, 100) == "");
  require_clean(w, kMouse, 100);
}

// The control for the tests above: a restarted backend that ignores the
// channel repeats seq_nos, and the guest notices.
BOOST_AUTO_TEST_CASE(a_restart_that_ignores_the_channel_is_caught_as_out_of_order) {
  World w;
  w.console.produce(kKeyboard.name, 10);
  BOOST_REQUIRE(w.deliver(kKeyboard, 10));
  w.crash(kKeyboard);
  w.connect(kKeyboard, 1);  // no resume_from_channel()
  w.console.produce(kKeyboard.name, 10);
  BOOST_REQUIRE(w.deliver(kKeyboard, 20));
  BOOST_TEST(w.counts(kKeyboard).out_of_order == 10u);
  BOOST_TEST(check_sequence(w.reports(kKeyboard), kKeyboard.kind, 1, 20) != "");
}

BOOST_AUTO_TEST_CASE(resume_from_channel_reads_only_what_it_can_validate) {
  World w;
  // Nothing was ever inserted: keep the given start.
  w.crash(kKeyboard);
  BOOST_TEST((w.connect(kKeyboard, 7).resume_from_channel() == InputBackend::Continue::empty));
  BOOST_TEST(w.backend(kKeyboard).next_seq() == 7u);

  // A peer that scribbled on the queue header's slot offset is not followed.
  w.console.produce(kMouse.name, 3);
  BOOST_REQUIRE(w.deliver(kMouse, 3));
  w.crash(kMouse);
  auto& mouse = w.connect(kMouse, 4);  // attached (and validated) before the scribble
  auto& owner = w.owners[kMouse.name]->channel();
  const std::uint64_t at = owner.queue(0).header_offset() + offsetof(ch::SignalQueueHeader, sig_base_offset);
  const std::uint64_t bogus = 1u << 20;
  BOOST_REQUIRE(owner.write(at, &bogus, sizeof bogus) == 0);
  BOOST_TEST((mouse.resume_from_channel() == InputBackend::Continue::unreadable));
  BOOST_TEST(mouse.next_seq() == 4u);

  // Only before this backend has delivered anything.
  w.console.produce(kKeyboard.name, 1);
  w.console.poll();
  BOOST_CHECK_THROW(w.backend(kKeyboard).resume_from_channel(), std::logic_error);
}

BOOST_AUTO_TEST_CASE(the_console_partition_refuses_what_it_cannot_serve) {
  World w;
  auto& keyboard_channel = w.console_ends[kKeyboard.name]->channel();
  BOOST_CHECK_THROW(w.console.attach(kKeyboard.name, keyboard_channel, ch::ChannelKind::keyboard),
                    std::invalid_argument);  // already attached
  BOOST_CHECK_THROW(w.console.attach("", keyboard_channel, ch::ChannelKind::keyboard), std::invalid_argument);
  BOOST_CHECK_THROW(w.console.attach("g0/vhba0", keyboard_channel, ch::ChannelKind::vhba), std::invalid_argument);
  BOOST_CHECK_THROW(InputBackend(keyboard_channel, ch::ChannelKind::keyboard, 0), std::invalid_argument);
  BOOST_TEST(!w.console.pause("g9/keyboard0"));
  BOOST_TEST(!w.console.resume("g9/keyboard0"));
  BOOST_TEST(!w.console.produce("g9/keyboard0", 1));
  BOOST_TEST(!w.console.produce("g9/keyboard0", in::Activity{in::Action::key_down, 30, 0, 0}));
  BOOST_TEST(!w.console.detach("g9/keyboard0"));
  BOOST_TEST(w.console.size() == 2u);
  // A hand-made report keeps its content and gets the next seq_no.
  BOOST_TEST(*w.console.produce(kKeyboard.name, in::Activity{in::Action::key_down_up, 30, 0, 0}) == 1u);
  BOOST_REQUIRE(w.deliver(kKeyboard, 1));
  BOOST_TEST((w.reports(kKeyboard)[0].activity.action == in::Action::key_down_up));
  BOOST_TEST(std::uint16_t{w.reports(kKeyboard)[0].activity.arg1} == 30u);
}
