// The confined file-system operations (fs-ops.h) as addon exports: fsOpenRoot, fsCloseRoot,
// fsMakeEntry, fsFinishFile, fsWritePool{Create,Submit,Barrier,Close}, fsRemoveAt, fsRenameAt,
// fsReadDirAt, fsLstatAt, fsOpenAt, fsSetXattrAt, fsListXattrsAt, fsSetTimesAt, fsSync,
// fsSyncAsync and fsFlock, declared in lib/native.ts.
#pragma once

#include <napi.h>

namespace berth {

void RegisterFsOps(Napi::Env env, Napi::Object exports);

}  // namespace berth
