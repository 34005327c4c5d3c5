// Converts the plain-data launch spec built by lib/container/launch-plan.ts into LaunchSpec.
#pragma once

#include <napi.h>

#include "launch-spec.h"

namespace berth {

// Returns false (with a pending JS TypeError naming the field) if the object is malformed.
// TypeScript validates user input; this only guards the boundary.
bool ParseLaunchSpec(Napi::Env env, Napi::Object js, LaunchSpec* spec);

}  // namespace berth
