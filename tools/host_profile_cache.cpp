#include "tools/host_profile_cache.hpp"

#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tools/cache_dir.hpp"
#include "tools/progress_bar.hpp"

namespace mf {

HostProfile load_or_capture_host_profile() {
    HostProfileOptions quick;
    quick.measure = false;
    HostProfile here = capture_host_profile(quick);
    compute_fingerprint(here);
    const auto path = cache_dir() / "host-profile.json";
    if (std::ifstream in{path}) {
        try {
            HostProfile saved = host_profile_from_json(nlohmann::json::parse(in));
            if (saved.fingerprint == here.fingerprint && saved.dram_read_total.value > 0) {
                // A profile from before the random-operand AMX peaks: measure them (a second) and keep it.
                if (add_random_amx_peaks(saved)) {
                    const std::string text = host_profile_to_json(saved).dump(2) + "\n";
                    write_file_atomic(cache_dir() / fmt::format("host-{}.json", saved.fingerprint), text);
                    write_file_atomic(path, text);
                }
                return saved;
            }
            fmt::print(stderr, "moeforge: {} is for another host; measuring this one\n", path.string());
        } catch (const std::exception& e) {
            fmt::print(stderr, "moeforge: ignoring {} ({}); measuring this host\n", path.string(), e.what());
        }
    }
    ProgressBar bar("host profile");
    HostProfile p =
        capture_host_profile(HostProfileOptions{}, [&](std::string_view stage, int done, int total) {
            bar.update(uint64_t(done), uint64_t(total), stage);
        });
    bar.finish();
    const std::string text = host_profile_to_json(p).dump(2) + "\n";
    write_file_atomic(cache_dir() / fmt::format("host-{}.json", p.fingerprint), text);
    write_file_atomic(path, text);
    return p;
}

}  // namespace mf
