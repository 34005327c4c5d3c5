// Confined file-system operations for unpacking image layers.
//
// Every path an operation takes is relative to a root directory fd and is resolved with
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV):
// the kernel itself guarantees that no `..`, absolute symlink or symlinked parent inside a
// (hostile) layer can make a write land outside the root, whatever races happen in between.
// The final component is always acted on with *at() calls that do not follow symlinks.
//
// Also here, because the unpacker needs them and Node 20 has neither: a streaming zstd
// decompressor (libzstd) and a non-blocking flock().
#pragma once

#include <napi.h>

namespace berth {

// Adds fsOpenRoot, fsCloseRoot, fsWritePool{Create,Submit,Barrier,Close}, fsMakeEntry, fsFinishFile, fsRemoveAt, fsReadDirAt, fsLstatAt, fsOpenAt,
// fsSetXattrAt, fsListXattrsAt, fsSetTimesAt, fsSync, fsSyncAsync, fsFlock, zstdCreate, zstdDecompress and
// zstdEnd to `exports`. Their TypeScript declarations live in lib/native.ts.
void RegisterFsOps(Napi::Env env, Napi::Object exports);

}  // namespace berth
