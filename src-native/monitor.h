// `berth-helper monitor`: the parent of a detached container's PID 1. It outlives the Node
// process that started it and supervises the container while no Node process watches: writes
// its output to its log, restarts it by its restart policy (Docker's backoff), runs its
// healthcheck, records each run in `run.json` and each event in the runtime's journal, and at
// the final exit removes its cgroup (and with autoRemove its files). See
// docs/design/containers.md, "Detached supervision".
#pragma once

namespace berth {

// argv after "monitor". Descriptors: fd 3 carries the encoded launch spec (read to EOF); fd 4
// receives one JSON line — {"pid":N,"monitorPid":M} or {"error":{...}} or {"execFailed":{...}}
// — then closes; fd 5 the init helper and fd 6 a joined network namespace when the spec names
// them; with a healthcheck, fd 7 the encoded probe spec (read to EOF) and fd 8 berth-exec.
int RunMonitor(int argc, char** argv);

}  // namespace berth
