// The generic search on a synthetic cost function: it finds the optimum without timing everything, never times a
// candidate that fails verification, prunes by the bound, resumes from the trial store, and never selects a
// config slower than the default beyond the tolerance.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "tune/search.hpp"
#include "tune/trial_store.hpp"

using namespace mf;

namespace {

// A 2-D parameter grid with a smooth bowl (minimum at a=5, b=2) plus seeded multiplicative noise that shrinks with
// the timing length, like real timings do.
struct Synthetic {
    std::map<std::string, int> timed_calls, verify_calls;
    std::mt19937 rng{7};
    double noise = 0.02;

    static double cost(int a, int b) { return 1.0 + 0.05 * (a - 5) * (a - 5) + 0.2 * (b - 2) * (b - 2); }

    std::vector<Candidate> make(int def_a, int def_b, double bound_scale = 0) {
        std::vector<Candidate> v;
        for (int a = 0; a < 10; ++a)
            for (int b = 0; b < 5; ++b) {
                Candidate c;
                c.label = "a" + std::to_string(a) + "b" + std::to_string(b);
                c.config = {{"a", a}, {"b", b}};
                c.is_default = a == def_a && b == def_b;
                c.bound_seconds = bound_scale * cost(a, b);
                const std::string label = c.label;
                c.verify = [this, label, a] {
                    ++verify_calls[label];
                    return a == 7 ? std::string("mismatch at row 3") : std::string();
                };
                c.time = [this, label, a, b](double len) {
                    ++timed_calls[label];
                    std::normal_distribution<double> d(0, noise * std::sqrt(0.03 / len));
                    return cost(a, b) * (1 + std::fabs(d(rng)));
                };
                v.push_back(std::move(c));
            }
        return v;
    }
};

int index_of(const std::vector<Candidate>& v, const std::string& label) {
    for (size_t i = 0; i < v.size(); ++i)
        if (v[i].label == label) return int(i);
    return -1;
}

struct TempFile {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("mf_test_trials_" + std::to_string(getpid()) + ".jsonl");
    ~TempFile() { std::filesystem::remove(path); }
};

}  // namespace

TEST_CASE("search: successive halving finds the optimum and times fewer than all") {
    Synthetic s;
    auto cands = s.make(0, 0);
    TrialStore store({}, "test");
    SearchOptions opt;
    const FamilyResult r = search_family("synthetic", cands, opt, store);
    REQUIRE(r.chosen >= 0);
    CHECK(cands[size_t(r.chosen)].label == "a5b2");
    CHECK(r.chosen_seconds < r.default_seconds);
    CHECK(r.failed == 5);  // a == 7 fails verification
    CHECK(r.verified == 45);
    // Rung 0 times every verified candidate once; later rungs only the survivors.
    CHECK(r.timed < 45 * 2);
    for (int b = 0; b < 5; ++b) CHECK(s.timed_calls.count("a7b" + std::to_string(b)) == 0);
    CHECK(s.timed_calls["a0b0"] >= 6);  // the default: first and last on every rung, and the confirmation
    // The ranking starts with the winner of the last rung and holds no candidate that failed verification.
    REQUIRE(!r.ranking.empty());
    CHECK(cands[size_t(r.ranking.front())].label == "a5b2");
    for (int i : r.ranking) CHECK(cands[size_t(i)].config["a"] != 7);
}

TEST_CASE("search: the roofline bound prunes candidates that cannot beat the best") {
    Synthetic s;
    // Bounds at 99% of the true cost: everything whose bound exceeds the best so far is skipped.
    auto cands = s.make(5, 0, 0.99);
    TrialStore store({}, "test");
    const FamilyResult r = search_family("synthetic", cands, SearchOptions{}, store);
    CHECK(cands[size_t(r.chosen)].label == "a5b2");
    CHECK(r.pruned > 0);
    CHECK(s.timed_calls.count("a0b4") == 0);  // the worst one, bound 2.6x the optimum
    for (const auto& t : r.trials)
        if (t.error == "pruned") CHECK(s.timed_calls.count(t.label) == 0);
}

TEST_CASE("search: bounds above the measured times (a profile taken under load) stop the pruning") {
    Synthetic s;
    auto cands = s.make(5, 0, 2.0);  // "lower bounds" twice the true cost: wrong
    TrialStore store({}, "test");
    const FamilyResult r = search_family("synthetic", cands, SearchOptions{}, store);
    CHECK(r.pruned == 0);
    CHECK(cands[size_t(r.chosen)].label == "a5b2");
}

TEST_CASE("search: a failing default is an error, not a silent choice") {
    Synthetic s;
    auto cands = s.make(7, 0);
    TrialStore store({}, "test");
    CHECK_THROWS_WITH_AS(search_family("synthetic", cands, SearchOptions{}, store), doctest::Contains("a7b0"),
                         std::runtime_error);
}

TEST_CASE("search: a second run resumes from the trial store without re-running trials") {
    TempFile f;
    Synthetic s1;
    auto c1 = s1.make(0, 0);
    std::atomic<bool> stop{false};
    SearchOptions opt;
    opt.stop = &stop;
    int seen = 0;
    FamilyResult first;
    {
        TrialStore store(f.path, "ctx1");
        // Interrupt after 30 trials, as Ctrl-C would.
        first = search_family("synthetic", c1, opt, store, 0, [&](const std::string&) {
            if (++seen == 30) stop = true;
        });
        CHECK(first.interrupted);
    }
    Synthetic s2;
    auto c2 = s2.make(0, 0);
    TrialStore store(f.path, "ctx1");
    CHECK(store.loaded() == 30);
    opt.stop = nullptr;
    const FamilyResult second = search_family("synthetic", c2, opt, store);
    CHECK_FALSE(second.interrupted);
    CHECK(second.resumed == 30);
    CHECK(c2[size_t(second.chosen)].label == "a5b2");
    int reverified = 0;
    for (const auto& [label, calls] : s1.verify_calls) reverified += s2.verify_calls.count(label) ? 1 : 0;
    CHECK(reverified == 0);
    // Another context (tool version, host or shape) discards the old trials.
    TrialStore other(f.path, "ctx2");
    CHECK(other.loaded() == 0);
    CHECK(other.size() == 0);
}

TEST_CASE("trial store: a torn last line is ignored") {
    TempFile f;
    {
        TrialStore store(f.path, "ctx");
        store.add({"fam", "x1", 0, 0.5, 1.0, false, ""});
        store.add({"fam", "x2", 0, 0.25, 2.0, true, ""});
    }
    std::ofstream(f.path, std::ios::app) << "{\"f\":\"fam\",\"l\":\"x3\",\"r\":0,\"s\":0.1";
    TrialStore store(f.path, "ctx");
    CHECK(store.loaded() == 2);
    REQUIRE(store.find("fam", "x2", 0));
    CHECK(store.find("fam", "x2", 0)->seconds == 0.25);
    CHECK(store.find("fam", "x2", 0)->is_default);
    CHECK(store.find("fam", "x3", 0) == nullptr);
}

TEST_CASE("selection: never a config slower than the default beyond the tolerance, on recorded trials") {
    // Recorded rungs: (timings, default index) -> the rule's choice must satisfy chosen <= default * (1 + tol)
    // and must be the default unless something beats it by more than tol.
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(0.5, 1.5);
    const double tol = 0.03;
    for (int trial = 0; trial < 2000; ++trial) {
        std::vector<double> t(8);
        for (auto& x : t) x = (rng() % 5 == 0) ? 0.0 : u(rng);
        const int def = int(rng() % 8);
        t[size_t(def)] = u(rng);
        const int w = select_winner(t, def, tol);
        REQUIRE(t[size_t(w)] > 0);
        CHECK(t[size_t(w)] <= t[size_t(def)] * (1 + tol));
        if (w != def) CHECK(t[size_t(w)] < t[size_t(def)] * (1 - tol));
        double best = t[size_t(def)];
        for (double x : t)
            if (x > 0) best = std::min(best, x);
        if (best < t[size_t(def)] * (1 - tol)) CHECK(t[size_t(w)] == best);
    }
    // Within the tolerance the default stays.
    CHECK(select_winner({1.0, 0.98, 1.2}, 0, tol) == 0);
    CHECK(select_winner({1.0, 0.96, 1.2}, 0, tol) == 1);
    CHECK_THROWS(select_winner({0.0, 0.5}, 0, tol));
}

TEST_CASE("search: a noisy near-tie keeps the default") {
    Synthetic s;
    s.noise = 0;
    std::vector<Candidate> cands = s.make(5, 2);
    // Make a4b2 1% faster than the default a5b2: inside the 3% tolerance, so the default must stay.
    const int i = index_of(cands, "a4b2");
    cands[size_t(i)].time = [](double) { return 0.99; };
    TrialStore store({}, "test");
    const FamilyResult r = search_family("synthetic", cands, SearchOptions{}, store);
    CHECK(r.chosen == r.default_index);
    CHECK(r.chosen_seconds == r.default_seconds);
}

TEST_CASE("time_best_of: measures a known sleep-free workload consistently") {
    volatile double sink = 0;
    auto work = [&] {
        double x = 0;
        for (int i = 0; i < 20000; ++i) x += std::sqrt(double(i));
        sink = x;
    };
    const double a = time_best_of(work, 0.01);
    CHECK(a > 0);
    CHECK(a < 0.01);
}
