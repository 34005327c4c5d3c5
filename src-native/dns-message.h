// DNS messages as the embedded resolver (`berth-helper dns`) reads and writes them: a
// bounds-checked parser for the one-question queries containers send, a parser for the
// upstream replies it relays, and the builder of its own answers. Plain C++ with no I/O, so
// the addon exposes the parser to the unit tests (fuzzed with random bytes there).
//
// Every read is checked against the end of the buffer before it happens; names are at most
// 255 bytes in wire form and labels 63 (RFC 1035 §2.3.4); a compression pointer in a query's
// question is refused: a client has nothing to compress in the only name it sends, and
// pointers are how a parser gets sent into loops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace berth {

constexpr uint16_t kDnsTypeA = 1;
constexpr uint16_t kDnsTypePtr = 12;
constexpr uint16_t kDnsTypeAaaa = 28;
constexpr uint16_t kDnsClassIn = 1;

constexpr uint8_t kRcodeOk = 0;
constexpr uint8_t kRcodeFormErr = 1;
constexpr uint8_t kRcodeServFail = 2;
constexpr uint8_t kRcodeNxDomain = 3;
constexpr uint8_t kRcodeNotImp = 4;
constexpr uint8_t kRcodeRefused = 5;

// Plain UDP DNS without EDNS: answers beyond this set TC (RFC 1035 §4.2.1).
constexpr size_t kDnsUdpLimit = 512;

enum class DnsParse {
  kOk = 0,
  kShort = 1,        // fewer than 12 bytes: not even a header to answer
  kNotQuery = 2,     // QR set: a response sent to us; dropped, never answered (no reflection loops)
  kNotImplemented = 3,  // opcode other than QUERY
  kMalformed = 4,    // header present, question broken: FORMERR
};

struct DnsQuery {
  uint16_t id = 0;
  uint16_t flags = 0;
  std::string name;  // lower-case, dot-separated, no trailing dot; "" for the root
  uint16_t qtype = 0;
  uint16_t qclass = 0;
};

// Parses a query with exactly one question. On kMalformed and kNotImplemented, `q->id` and
// `q->flags` are set (the header was read) so that an error answer can be built.
DnsParse ParseQuery(const uint8_t* p, size_t n, DnsQuery* q);

// Parses the header and question of a reply (compression pointers allowed in the question:
// an upstream may use them) and checks that it answers `q` with `id`.
bool ReplyMatches(const uint8_t* p, size_t n, uint16_t id, const DnsQuery& q);

// An answer to `q`: `rcode`, then A records for `addresses` (host byte order) or one PTR
// record with `ptr_name`. TTL 600 s, as Docker's resolver. Truncated with TC beyond `cap`.
// Returns the length written (0 if `cap` cannot hold even the header and question).
size_t BuildAnswer(const DnsQuery& q, uint8_t rcode, const std::vector<uint32_t>& addresses, const std::string& ptr_name,
                   uint8_t* out, size_t cap);

// A header-only error answer (FORMERR, NOTIMP) echoing `id` and the RD bit of `flags`.
size_t BuildHeaderError(uint16_t id, uint16_t flags, uint8_t rcode, uint8_t* out, size_t cap);

// "4.3.2.1.in-addr.arpa" → 1.2.3.4 (host byte order). False for anything else.
bool ReverseNameToIpv4(const std::string& name, uint32_t* ip);

// Encodes a dotted name into wire form. False if a label is empty or too long, or the whole
// is beyond 255 bytes.
bool EncodeName(const std::string& name, std::string* wire);

}  // namespace berth
