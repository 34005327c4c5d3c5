// Container networking over rtnetlink (NETLINK_ROUTE), with messages built here: no `ip`
// binary, no libnl. Plain C++ (no N-API), so the static berth-helper links it too: a detached
// container's monitor configures the network from the same launch spec as the addon.
//
// What lives where: TypeScript (lib/network/) decides names, addresses, routes and MTUs and
// persists them; this file only makes the kernel objects exist.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "launch-spec.h"
#include "native-error.h"

namespace berth {

// One link as a dump of the host's links reports it (netListLinks).
struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;   // IFLA_INFO_KIND: "bridge", "veth", "" for physical devices
  std::string alias;  // IFLA_IFALIAS: berth tags what it creates ("berth:<root>:<network>…")
  int master = 0;     // ifindex of the bridge a port is enslaved to
  uint32_t mtu = 0;
  bool up = false;
};

// A bridge as a network needs it: created if missing, given its gateway address(es), up.
struct BridgeSpec {
  std::string name;
  std::vector<std::string> addresses;  // CIDR; the gateway on the network's subnet
  uint32_t mtu = 0;                    // 0: the kernel's default
  // A fixed MAC: otherwise a bridge takes the lowest MAC of its ports, which changes as
  // containers come and go and leaves stale gateway entries in the containers' ARP caches.
  std::string mac;
  std::string alias;
};

// Creates the veth pairs of `interfaces` with their peers directly inside the network
// namespace `netns_fd` (so the peer never has a host-visible name), attaches the host ends to
// their bridges and configures the peers (up, addresses, default route) through a netlink
// socket opened inside that namespace. On failure the host ends created so far are deleted.
bool ConfigureInterfaces(int netns_fd, const std::vector<NetInterface>& interfaces, NativeError* error);

// The launch path: called by Spawn() in the parent between clone() and "go", so the
// container never runs a user instruction before its network is ready. `pid` is the cloned
// child (not yet reaped, so the pid cannot have been recycled).
bool SetupContainerNetwork(int pid, const LaunchSpec& spec, NativeError* error);

// Creates `bridge` if it does not exist, sets its MTU, alias and addresses, and brings it up.
// Idempotent: an existing bridge keeps its index; an address it already has is not an error.
bool EnsureBridge(const BridgeSpec& bridge, NativeError* error);

// RTM_DELLINK by name. Deleting either end of a veth deletes both. *existed = false (and
// success) when there was no such link.
bool DeleteLink(const std::string& name, bool* existed, NativeError* error);

// Every link of the calling thread's network namespace.
bool ListLinks(std::vector<LinkInfo>* links, NativeError* error);

// Deletes the IPv4 conntrack entries whose original direction goes to `port` over `protocol`
// (IPPROTO_TCP/UDP), whatever the addresses. A UDP "connection" to a port that was not yet
// published keeps its un-DNATed entry for as long as packets keep coming (Docker flushes
// these too); an entry towards a container that is gone would keep misdirecting them.
bool FlushConntrack(uint8_t protocol, uint16_t port, int* deleted, NativeError* error);

}  // namespace berth
