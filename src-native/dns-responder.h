// `berth-helper dns <state dir> <network id> <control name>`: the embedded resolver of one
// user network (docs/design/networks.md § DNS). It lives in the host's network namespace,
// serves sockets the launching process made inside each member's namespace, answers the
// members' names from the name files under `networks/<id>.dns/`, forwards the rest upstream,
// and exits once the network has neither members nor name files.
#pragma once

namespace berth {

int RunDnsResponder(const char* state_dir, const char* network_id, const char* control_name);

}  // namespace berth
