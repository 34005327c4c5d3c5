// `berth-helper monitor`: the parent of a detached container's PID 1. It outlives the Node
// process that started it, writes the container's output to its log, records its exit in the
// state directory, and removes its cgroup.
#pragma once

namespace berth {

// argv after "monitor". fd 3 carries the encoded launch spec (read to EOF); fd 4 receives one
// JSON line — {"pid":N,"monitorPid":M} or {"error":{...}} or {"execFailed":{...}} — then
// closes.
int RunMonitor(int argc, char** argv);

}  // namespace berth
