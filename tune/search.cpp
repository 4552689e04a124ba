#include "tune/search.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace mf {

using Clock = std::chrono::steady_clock;

double time_best_of(const std::function<void()>& call, double seconds) {
    auto secs = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
    const auto t0 = Clock::now();
    call();  // warm-up and probe
    const double probe = std::max(secs(t0, Clock::now()), 1e-9);
    if (probe * 2 >= seconds) {
        // Long calls: one more (warm) call; the best of the two.
        const auto t1 = Clock::now();
        call();
        return std::min(probe, secs(t1, Clock::now()));
    }
    const int64_t per_batch = std::max<int64_t>(1, int64_t(seconds / 3 / probe));
    double best = std::numeric_limits<double>::infinity();
    const auto start = Clock::now();
    for (int batch = 0; batch < 1000; ++batch) {
        const auto b0 = Clock::now();
        for (int64_t i = 0; i < per_batch; ++i) call();
        const auto b1 = Clock::now();
        best = std::min(best, secs(b0, b1) / double(per_batch));
        if (batch >= 1 && secs(start, b1) >= seconds) break;
    }
    return best;
}

int select_winner(const std::vector<double>& seconds, int default_index, double tolerance) {
    if (default_index < 0 || default_index >= int(seconds.size()) || !(seconds[size_t(default_index)] > 0))
        throw std::logic_error(fmt::format("{}:{}: select_winner needs a timed default", __FILE__, __LINE__));
    int best = default_index;
    for (int i = 0; i < int(seconds.size()); ++i)
        if (seconds[size_t(i)] > 0 && seconds[size_t(i)] < seconds[size_t(best)]) best = i;
    if (best != default_index && !(seconds[size_t(best)] < seconds[size_t(default_index)] * (1 - tolerance)))
        return default_index;
    return best;
}

FamilyResult search_family(const std::string& family, std::vector<Candidate>& cands, const SearchOptions& opt,
                           TrialStore& store, double clock_offset, const SearchProgress& progress) {
    FamilyResult res;
    res.family = family;
    const int n = int(cands.size());
    for (int i = 0; i < n; ++i)
        if (cands[size_t(i)].is_default) {
            if (res.default_index >= 0) throw std::logic_error(family + ": two default candidates");
            res.default_index = i;
        }
    if (res.default_index < 0) throw std::logic_error(family + ": no default candidate");
    const int def = res.default_index;

    const auto t_start = Clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t_start).count(); };
    auto stopped = [&] { return opt.stop && opt.stop->load(std::memory_order_relaxed); };
    auto over_budget = [&] { return elapsed() > opt.budget_seconds; };
    auto note = [&](TrialRecord r, bool resumed) {
        r.at_seconds = clock_offset + elapsed();
        if (!resumed) store.add(r);
        res.trials.push_back(r);
        if (progress) {
            const char* what = r.rung == TrialRecord::kVerifyRung ? "verify" : r.error == "pruned" ? "prune" : "time";
            progress(fmt::format("{} {} {}", family, what, r.label));
        }
    };

    // 1. Verify (default first): a candidate that does not match its reference is never timed.
    std::vector<int> alive;
    std::vector<int> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_partition(order.begin(), order.end(), [&](int i) { return i == def; });
    for (int i : order) {
        Candidate& c = cands[size_t(i)];
        if (stopped()) {
            res.interrupted = true;
            break;
        }
        if (i != def && over_budget()) break;
        std::string err;
        if (const TrialRecord* r = store.find(family, c.label, TrialRecord::kVerifyRung)) {
            err = r->error;
            ++res.resumed;
            note(*r, true);
        } else {
            err = c.verify ? c.verify() : std::string{};
            note({family, c.label, TrialRecord::kVerifyRung, 0, 0, c.is_default, err}, false);
        }
        if (!err.empty()) {
            ++res.failed;
            if (i == def)
                throw std::runtime_error(
                    fmt::format("{}: the default kernel {} does not match its reference: {}", family, c.label, err));
            continue;
        }
        ++res.verified;
        alive.push_back(i);
    }

    // 2. Successive halving with roofline pruning; the default is timed first on every rung.
    std::vector<double> last(size_t(n), 0.0);
    bool bounds_ok = true;
    std::vector<std::pair<int, double>> reached(static_cast<size_t>(n), {-1, 0.0});  // (highest rung, its time)
    double len = opt.first_seconds;
    for (int rung = 0; rung < opt.max_rungs && !res.interrupted; ++rung) {
        std::stable_sort(alive.begin(), alive.end(), [&](int a, int b) {
            if ((a == def) != (b == def)) return a == def;
            return cands[size_t(a)].bound_seconds < cands[size_t(b)].bound_seconds;
        });
        std::vector<double> t(size_t(n), 0.0);
        double best = std::numeric_limits<double>::infinity();
        bool budget_hit = false;
        for (int i : alive) {
            Candidate& c = cands[size_t(i)];
            if (stopped()) {
                res.interrupted = true;
                break;
            }
            if (i != def && over_budget()) {
                budget_hit = true;
                break;
            }
            if (bounds_ok && i != def && c.bound_seconds > 0 && c.bound_seconds >= best) {
                ++res.pruned;
                note({family, c.label, rung, 0, 0, false, "pruned"}, true);
                continue;
            }
            if (const TrialRecord* r = store.find(family, c.label, rung); r && r->seconds > 0) {
                t[size_t(i)] = r->seconds;
                ++res.resumed;
                note(*r, true);
            } else {
                t[size_t(i)] = c.time(len);
                ++res.timed;
                note({family, c.label, rung, t[size_t(i)], 0, c.is_default, ""}, false);
            }
            best = std::min(best, t[size_t(i)]);
            // A time below its own lower bound means the host figures behind the bounds are wrong (a profile
            // measured under load): stop trusting them for this family.
            if (c.bound_seconds > 0 && t[size_t(i)] < c.bound_seconds) bounds_ok = false;
        }
        // The default again at the end of the rung: drift during the rung must not favour the candidates.
        if (t[size_t(def)] > 0 && !res.interrupted && alive.size() > 1) {
            Candidate& c = cands[size_t(def)];
            const int again = TrialRecord::kDefaultAgain + rung;
            double s2;
            if (const TrialRecord* r = store.find(family, c.label, again); r && r->seconds > 0) {
                s2 = r->seconds;
                ++res.resumed;
                note(*r, true);
            } else {
                s2 = c.time(len);
                ++res.timed;
                note({family, c.label, again, s2, 0, true, ""}, false);
            }
            t[size_t(def)] = std::min(t[size_t(def)], s2);
        }
        for (int i : alive)
            if (t[size_t(i)] > 0) reached[size_t(i)] = {rung, t[size_t(i)]};
        if (t[size_t(def)] > 0) last = t;
        std::vector<int> timed;
        for (int i : alive)
            if (t[size_t(i)] > 0) timed.push_back(i);
        if (budget_hit || res.interrupted || timed.size() <= 2 || rung + 1 == opt.max_rungs) break;
        std::sort(timed.begin(), timed.end(), [&](int a, int b) { return t[size_t(a)] < t[size_t(b)]; });
        const size_t keep = std::max<size_t>(2, (timed.size() + size_t(opt.eta) - 1) / size_t(opt.eta));
        timed.resize(std::min(keep, timed.size()));
        if (std::find(timed.begin(), timed.end(), def) == timed.end()) timed.push_back(def);
        alive = timed;
        len *= opt.growth;
    }
    for (int i = 0; i < n; ++i)
        if (reached[size_t(i)].first >= 0) res.ranking.push_back(i);
    std::stable_sort(res.ranking.begin(), res.ranking.end(), [&](int a, int b) {
        if (reached[size_t(a)].first != reached[size_t(b)].first)
            return reached[size_t(a)].first > reached[size_t(b)].first;
        return reached[size_t(a)].second < reached[size_t(b)].second;
    });
    if (!(last[size_t(def)] > 0)) {
        res.chosen = def;
        res.interrupted = true;
        return res;
    }

    // 3. Select, then confirm a non-default winner by re-timing it and the default alternately.
    int w = select_winner(last, def, opt.tolerance);
    res.chosen_seconds = last[size_t(w)];
    res.default_seconds = last[size_t(def)];
    if (w != def && opt.confirm_rounds > 0 && !stopped()) {
        double bw = std::numeric_limits<double>::infinity(), bd = bw;
        for (int r = 0; r < opt.confirm_rounds; ++r)
            for (int i : {def, w}) {
                Candidate& c = cands[size_t(i)];
                const int rung = TrialRecord::kConfirmRung + r;
                double s;
                if (const TrialRecord* rec = store.find(family, c.label, rung); rec && rec->seconds > 0) {
                    s = rec->seconds;
                    ++res.resumed;
                    note(*rec, true);
                } else {
                    s = c.time(len);
                    ++res.timed;
                    note({family, c.label, rung, s, 0, c.is_default, ""}, false);
                }
                (i == def ? bd : bw) = std::min(i == def ? bd : bw, s);
            }
        // Best of the last rung and the confirmation for each, then the same rule.
        bd = std::min(bd, last[size_t(def)]);
        bw = std::min(bw, last[size_t(w)]);
        std::vector<double> conf(size_t(n), 0.0);
        conf[size_t(def)] = bd;
        conf[size_t(w)] = bw;
        w = select_winner(conf, def, opt.tolerance);
        res.chosen_seconds = conf[size_t(w)];
        res.default_seconds = bd;
    }
    res.chosen = w;
    return res;
}

}  // namespace mf
