// The launch spec's wire format: TypeScript encodes it (lib/native/spec-codec.ts), and
// both the addon and the static helper (the detached monitor) decode it here, so the two
// launch paths cannot drift apart. Little-endian, fields in a fixed order, framed by magics.
#pragma once

#include <cstddef>
#include <string>

#include "launch-spec.h"

namespace berth {

// Bumped whenever the wire format, the meaning of a field or the addon's exports change: it is
// the one version lib/native.ts checks, refusing an addon built for another (a stale prebuild)
// instead of failing later with a decode error or a missing function.
constexpr int kSpecFormatVersion = 10;

// Returns false and sets *error (naming the field) on malformed input.
bool DecodeLaunchSpec(const char* data, size_t size, LaunchSpec* spec, std::string* error);

}  // namespace berth
