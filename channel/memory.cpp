#include "channel/memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

namespace visorlab::channel {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string shm_path(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos)
    throw std::invalid_argument("shared memory name must be non-empty and contain no '/': '" + name + "'");
  return "/" + name;
}

}  // namespace

Mapping Mapping::borrow(std::span<std::byte> bytes) { return Mapping(bytes.data(), bytes.size(), false); }

Mapping::Mapping(Mapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      owned_(std::exchange(other.owned_, false)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  Mapping taken(std::move(other));  // our old mapping dies with `taken`
  std::swap(data_, taken.data_);
  std::swap(size_, taken.size_);
  std::swap(owned_, taken.owned_);
  return *this;
}

Mapping::~Mapping() {
  if (owned_ && data_) munmap(data_, size_);
}

bool Mapping::protect(bool accessible) {
  if (!owned_ || !data_) return false;
  if (mprotect(data_, size_, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) != 0)
    fail("mprotect channel mapping");
  return true;
}

std::pair<std::size_t, std::size_t> Region::next_data(std::size_t from) const {
  if (from >= size_) return {size_, size_};
  const off_t data = ::lseek(fd_, static_cast<off_t>(from), SEEK_DATA);
  if (data < 0) return errno == ENXIO ? std::pair{size_, size_} : std::pair{from, size_};
  const off_t hole = ::lseek(fd_, data, SEEK_HOLE);
  const std::size_t begin = std::min(static_cast<std::size_t>(data), size_);
  return {begin, hole < 0 ? size_ : std::min(static_cast<std::size_t>(hole), size_)};
}

Region Region::anonymous(std::size_t size) {
  int fd = memfd_create("visorlab-channel", MFD_CLOEXEC);
  if (fd < 0) fail("memfd_create");
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    fail("ftruncate memfd");
  }
  return Region(fd, size, "", false);
}

Region Region::create_shared(const std::string& name, std::size_t size) {
  const std::string path = shm_path(name);
  int fd = shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("shm_open " + path);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int saved = errno;
    close(fd);
    shm_unlink(path.c_str());
    errno = saved;
    fail("ftruncate " + path);
  }
  return Region(fd, size, name, true);
}

Region Region::open_shared(const std::string& name) {
  const std::string path = shm_path(name);
  int fd = shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) fail("shm_open " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    fail("fstat " + path);
  }
  return Region(fd, static_cast<std::size_t>(st.st_size), name, false);
}

Region::Region(Region&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(std::exchange(other.size_, 0)),
      name_(std::move(other.name_)), owner_(std::exchange(other.owner_, false)) {}

Region& Region::operator=(Region&& other) noexcept {
  Region taken(std::move(other));  // our old region dies with `taken`
  std::swap(fd_, taken.fd_);
  std::swap(size_, taken.size_);
  std::swap(name_, taken.name_);
  std::swap(owner_, taken.owner_);
  return *this;
}

Region::~Region() {
  if (owner_) unlink();
  if (fd_ >= 0) close(fd_);
}

void Region::unlink() {
  if (owner_ && !name_.empty()) shm_unlink(shm_path(name_).c_str());
  owner_ = false;
}

Mapping Region::map() const {
  if (size_ == 0) throw std::invalid_argument("cannot map an empty region '" + name_ + "'");
  void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) fail("mmap channel region");
  return Mapping(static_cast<std::byte*>(p), size_, true);
}

}  // namespace visorlab::channel
