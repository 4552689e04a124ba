// The host profile for commands that divide by measured peaks: $cache/host-profile.json when its fingerprint
// matches this host, else a fresh capture (with a progress bar) that is saved for next time.
#pragma once
#include "tune/host_profile.hpp"

namespace mf {

HostProfile load_or_capture_host_profile();

}  // namespace mf
