// HOST:PORT, the one parser: IPv4, names, [IPv6]:PORT, and the one port-0
// rule (listen: any; connect: refused), with errors naming the field.
#define BOOST_TEST_MODULE net_host_port
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>

#include "net/host_port.hpp"

using visorlab::net::HostPort;
using visorlab::net::is_loopback;
using visorlab::net::parse_host_port;
using visorlab::net::PortUse;

namespace {

std::string error_of(const std::string& text, PortUse use, const std::string& field = "--orchestrator") {
  try {
    parse_host_port(text, field, use);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_three_shapes_parse_and_print_back) {
  BOOST_TEST((parse_host_port("127.0.0.1:4700", "x", PortUse::connect) == HostPort{"127.0.0.1", 4700}));
  BOOST_TEST((parse_host_port("orchestrator.lab:4700", "x", PortUse::connect) == HostPort{"orchestrator.lab", 4700}));
  BOOST_TEST((parse_host_port("[::1]:4700", "x", PortUse::connect) == HostPort{"::1", 4700}));
  for (const char* text : {"127.0.0.1:4700", "[::1]:4700", "[fe80::1]:1", "h:65535"})
    BOOST_TEST(parse_host_port(text, "x", PortUse::listen).text() == text);
}

BOOST_AUTO_TEST_CASE(port_0_means_any_where_we_listen_and_is_refused_where_we_connect) {
  BOOST_TEST(parse_host_port("127.0.0.1:0", "--listen", PortUse::listen).port == 0);
  BOOST_TEST(parse_host_port("[::1]:0", "--listen", PortUse::listen).port == 0);
  const std::string e = error_of("127.0.0.1:0", PortUse::connect);
  BOOST_TEST(e.find("no port from 1 to 65535") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(malformed_addresses_are_refused_naming_the_field_and_the_text) {
  for (const char* bad : {"", "4700", ":4700", "h:", "h:x", "h:65536", "h:-1", "h:123456", "::1:4700", "[::1]4700",
                          "[::1", "[]:4700", "h:4 7"}) {
    for (const auto use : {PortUse::listen, PortUse::connect}) {
      const std::string e = error_of(bad, use, "hosts[0].address");
      BOOST_TEST(e.starts_with("hosts[0].address: '" + std::string(bad) + "' "), "'" << bad << "': " << e);
      BOOST_TEST(e.find("expected HOST:PORT") != std::string::npos, e);
    }
  }
  BOOST_TEST(error_of("::1:4700", PortUse::listen).find("without brackets") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(loopback_is_127_slash_8_ipv6_one_and_localhost) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) BOOST_TEST(is_loopback(h), h);
  for (const char* h : {"10.0.0.1", "0.0.0.0", "::", "example.org", "128.0.0.1"}) BOOST_TEST(!is_loopback(h), h);
}
