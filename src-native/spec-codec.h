// The launch spec's wire format: TypeScript encodes it (lib/container/spec-codec.ts), and
// both the addon and the static helper (the detached monitor) decode it here, so the two
// launch paths cannot drift apart. Little-endian, fields in a fixed order, framed by magics.
#pragma once

#include <cstddef>
#include <string>

#include "launch-spec.h"

namespace berth {

// Bumped whenever the wire format or the meaning of a field changes; lib/native.ts refuses an
// addon built for another version (a stale prebuild) instead of failing with a decode error.
constexpr int kSpecFormatVersion = 4;

// Returns false and sets *error (naming the field) on malformed input.
bool DecodeLaunchSpec(const char* data, size_t size, LaunchSpec* spec, std::string* error);

}  // namespace berth
