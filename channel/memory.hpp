// Where channel bytes live. A Region is memory any endpoint can map: process
// memory (an anonymous memfd) or POSIX shared memory found by name from another
// process. Each endpoint maps it separately, so one endpoint's pause guard can
// mprotect its own view without touching the peer's.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>

namespace visorlab::channel {

class Mapping {
 public:
  // A view of memory someone else owns (a file image read into a buffer).
  static Mapping borrow(std::span<std::byte> bytes);

  Mapping() = default;
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  std::span<std::byte> bytes() const { return {data_, size_}; }

  // mprotect this view: no access at all, or read/write again. Returns false
  // for borrowed memory, which cannot be protected.
  bool protect(bool accessible);

 private:
  friend class Region;
  Mapping(std::byte* data, std::size_t size, bool owned) : data_(data), size_(size), owned_(owned) {}

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool owned_ = false;
};

class Region {
 public:
  // Process memory: shared between the endpoints of one process (and children
  // forked after it was made), named by nothing.
  static Region anonymous(std::size_t size);
  // POSIX shared memory "/<name>", created exclusively; the creator unlinks the
  // name when the Region is destroyed.
  static Region create_shared(const std::string& name, std::size_t size);
  // Opens shared memory another process created; its size comes from the object.
  static Region open_shared(const std::string& name);

  Region(Region&& other) noexcept;
  Region& operator=(Region&& other) noexcept;
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  ~Region();

  Mapping map() const;
  std::size_t size() const { return size_; }
  // The next run of bytes at or after `from` that may hold data, [first,
  // second); {size, size} when none. Pages never written are holes the kernel
  // names without anyone reading them (a read of shared memory would allocate
  // them); without that support, everything from `from` on.
  std::pair<std::size_t, std::size_t> next_data(std::size_t from) const;
  const std::string& name() const { return name_; }
  // Drops the name now (the memory lives on while mapped).
  void unlink();
  // Forgets that we created the name, so destroying this Region leaves it: for
  // the copy a forked child inherits from its creator.
  void disown() { owner_ = false; }

 private:
  Region(int fd, std::size_t size, std::string name, bool owner)
      : fd_(fd), size_(size), name_(std::move(name)), owner_(owner) {}

  int fd_ = -1;
  std::size_t size_ = 0;
  std::string name_;
  bool owner_ = false;
};

}  // namespace visorlab::channel
