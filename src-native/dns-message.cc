#include "dns-message.h"

#include <cstring>

namespace berth {
namespace {

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}

constexpr size_t kHeader = 12;
constexpr size_t kMaxName = 255;
constexpr uint32_t kTtl = 600;

// Reads a name at `*pos`. Without `allow_pointers`, a pointer is malformed. With them, at most
// one jump per byte of the message can happen before the 255-byte bound stops it, and every
// pointer must point backwards, so a loop is impossible.
bool ReadName(const uint8_t* p, size_t n, size_t* pos, bool allow_pointers, std::string* out) {
  size_t at = *pos;
  size_t wire = 0;
  bool jumped = false;
  out->clear();
  for (;;) {
    if (at >= n) return false;
    uint8_t len = p[at];
    if ((len & 0xC0) == 0xC0) {
      if (!allow_pointers || at + 1 >= n) return false;
      size_t target = static_cast<size_t>(((len & 0x3F) << 8) | p[at + 1]);
      if (target >= at) return false;
      if (!jumped) *pos = at + 2;
      jumped = true;
      at = target;
      continue;
    }
    if ((len & 0xC0) != 0) return false;  // 0x40 / 0x80: extended label types, obsolete
    wire += 1 + len;
    if (wire > kMaxName) return false;
    if (len == 0) {
      if (!jumped) *pos = at + 1;
      return true;
    }
    if (at + 1 + len > n) return false;
    if (!out->empty()) out->push_back('.');
    for (size_t i = 0; i < len; ++i) {
      char c = static_cast<char>(p[at + 1 + i]);
      // A dot inside a label would make two names compare equal; refuse it.
      if (c == '.') return false;
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      out->push_back(c);
    }
    at += 1 + len;
  }
}

}  // namespace

DnsParse ParseQuery(const uint8_t* p, size_t n, DnsQuery* q) {
  if (n < kHeader) return DnsParse::kShort;
  q->id = Get16(p);
  q->flags = Get16(p + 2);
  if (q->flags & 0x8000) return DnsParse::kNotQuery;
  if (((q->flags >> 11) & 0xF) != 0) return DnsParse::kNotImplemented;
  uint16_t qd = Get16(p + 4), an = Get16(p + 6), ns = Get16(p + 8), ar = Get16(p + 10);
  // One question (every resolver sends one; RFC 9619); an OPT record in the additional
  // section is allowed (EDNS) and ignored.
  if (qd != 1 || an != 0 || ns != 0 || ar > 1) return DnsParse::kMalformed;
  size_t pos = kHeader;
  if (!ReadName(p, n, &pos, false, &q->name)) return DnsParse::kMalformed;
  if (pos + 4 > n) return DnsParse::kMalformed;
  q->qtype = Get16(p + pos);
  q->qclass = Get16(p + pos + 2);
  return DnsParse::kOk;
}

bool ReplyMatches(const uint8_t* p, size_t n, uint16_t id, const DnsQuery& q) {
  if (n < kHeader) return false;
  if (Get16(p) != id || !(Get16(p + 2) & 0x8000) || Get16(p + 4) != 1) return false;
  size_t pos = kHeader;
  std::string name;
  if (!ReadName(p, n, &pos, true, &name) || pos + 4 > n) return false;
  return name == q.name && Get16(p + pos) == q.qtype && Get16(p + pos + 2) == q.qclass;
}

bool EncodeName(const std::string& name, std::string* wire) {
  wire->clear();
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    size_t len = dot - start;
    if (len == 0 || len > 63) return false;
    wire->push_back(static_cast<char>(len));
    wire->append(name, start, len);
    start = dot + 1;
    if (dot == name.size() - 1) return false;  // trailing empty label
  }
  wire->push_back('\0');
  return wire->size() <= kMaxName;
}

size_t BuildHeaderError(uint16_t id, uint16_t flags, uint8_t rcode, uint8_t* out, size_t cap) {
  if (cap < kHeader) return 0;
  std::memset(out, 0, kHeader);
  Put16(out, id);
  Put16(out + 2, static_cast<uint16_t>(0x8000 | (flags & 0x0100) | 0x0080 | rcode));
  return kHeader;
}

size_t BuildAnswer(const DnsQuery& q, uint8_t rcode, const std::vector<uint32_t>& addresses, const std::string& ptr_name,
                   uint8_t* out, size_t cap) {
  std::string qname;
  if (!EncodeName(q.name, &qname)) return BuildHeaderError(q.id, q.flags, kRcodeFormErr, out, cap);
  size_t len = kHeader + qname.size() + 4;
  if (cap < len) return 0;
  std::memset(out, 0, kHeader);
  Put16(out, q.id);
  // QR, AA (berth is the authority for its members' names), RD echoed, RA.
  uint16_t flags = static_cast<uint16_t>(0x8000 | 0x0400 | (q.flags & 0x0100) | 0x0080 | rcode);
  Put16(out + 4, 1);
  std::memcpy(out + kHeader, qname.data(), qname.size());
  Put16(out + kHeader + qname.size(), q.qtype);
  Put16(out + kHeader + qname.size() + 2, q.qclass);
  uint16_t count = 0;
  bool truncated = false;
  auto record = [&](uint16_t type, const uint8_t* rdata, size_t rdlen) {
    size_t need = 2 + 2 + 2 + 4 + 2 + rdlen;
    if (len + need > cap) {
      truncated = true;
      return;
    }
    uint8_t* r = out + len;
    Put16(r, 0xC000 | kHeader);  // the question's name
    Put16(r + 2, type);
    Put16(r + 4, kDnsClassIn);
    Put32(r + 6, kTtl);
    Put16(r + 10, static_cast<uint16_t>(rdlen));
    std::memcpy(r + 12, rdata, rdlen);
    len += need;
    ++count;
  };
  if (rcode == kRcodeOk) {
    for (uint32_t a : addresses) {
      if (truncated) break;
      uint8_t rd[4];
      Put32(rd, a);
      record(kDnsTypeA, rd, 4);
    }
    std::string target;
    if (!ptr_name.empty() && EncodeName(ptr_name, &target)) {
      record(kDnsTypePtr, reinterpret_cast<const uint8_t*>(target.data()), target.size());
    }
  }
  if (truncated) flags |= 0x0200;
  Put16(out + 2, flags);
  Put16(out + 6, count);
  return len;
}

bool ReverseNameToIpv4(const std::string& name, uint32_t* ip) {
  static const char kSuffix[] = ".in-addr.arpa";
  constexpr size_t kSuffixLen = sizeof(kSuffix) - 1;
  if (name.size() <= kSuffixLen || name.compare(name.size() - kSuffixLen, kSuffixLen, kSuffix) != 0) return false;
  uint32_t octets[4];
  size_t count = 0, i = 0, end = name.size() - kSuffixLen;
  while (i < end) {
    if (count == 4) return false;
    uint32_t v = 0;
    size_t digits = 0;
    while (i < end && name[i] >= '0' && name[i] <= '9') {
      v = v * 10 + static_cast<uint32_t>(name[i] - '0');
      if (++digits > 3 || v > 255) return false;
      ++i;
    }
    if (digits == 0) return false;
    octets[count++] = v;
    if (i < end) {
      if (name[i] != '.') return false;
      ++i;
      if (i == end) return false;
    }
  }
  if (count != 4) return false;
  *ip = (octets[3] << 24) | (octets[2] << 16) | (octets[1] << 8) | octets[0];
  return true;
}

}  // namespace berth
