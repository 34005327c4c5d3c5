// btrfsSubvolume (btrfs-subvolume.h) as an addon export, declared in lib/native.ts.
#pragma once

#include <napi.h>

namespace berth {

void RegisterBtrfs(Napi::Env env, Napi::Object exports);

}  // namespace berth
