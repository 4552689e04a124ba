// The parameter search, generic over kernel families: a family is a list of Candidates (config JSON + a verify and a
// timing callback) for one benchmark problem. The search is not exhaustive:
//   - every candidate is verified against its reference before it is ever timed; failures are recorded, not timed;
//   - roofline pruning: a candidate whose predicted lower bound cannot beat the best measured time is skipped
//     (unless some measured time fell below its bound: then the host figures are wrong and pruning stops);
//   - successive halving: all survivors are timed briefly, the best 1/eta go on to a timing `growth` times longer;
//   - the default config is timed first and again last on every rung (the best of both counts), so the final
//     comparison is on the same run and timing and no position in the rung favours either side;
//   - a non-default winner must beat the default by more than `tolerance`, and is confirmed by re-timing both
//     alternately; otherwise the default is kept (so the tuned choice is never slower than the default beyond the
//     tolerance, measured on the same run).
// Finished trials go to a TrialStore on disk, so a run stopped with Ctrl-C resumes where it stopped.
#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tune/trial_store.hpp"

namespace mf {

struct Candidate {
    std::string label;  // unique within the family: the config's name part, e.g. "mt2nt2nmpf4"
    nlohmann::json config = nlohmann::json::object();
    bool is_default = false;
    double bound_seconds = 0;  // roofline lower bound on seconds per call (0: unknown, never pruned)
    // "" when the kernel matches its reference on a small ragged problem, else what went wrong (also a refusal).
    std::function<std::string()> verify;
    // Seconds per call of the benchmark problem, measured for about `seconds` of wall time (best of repeats).
    std::function<double(double seconds)> time;
};

struct SearchOptions {
    double budget_seconds = 60;   // for this family; the search stops starting new trials when it is spent
    double first_seconds = 0.03;  // timing length of rung 0
    double growth = 3;            // each rung times `growth` times longer
    int eta = 3;                  // each rung keeps the best ceil(n / eta) (and the default)
    int max_rungs = 3;
    double tolerance = 0.03;      // a non-default winner must be faster than the default by more than this
    int confirm_rounds = 2;       // alternate re-timings of winner and default at the last rung's length
    const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to stop after the current trial
};

struct FamilyResult {
    std::string family;
    int chosen = -1;         // index into the candidates
    int default_index = -1;
    double chosen_seconds = 0;   // on the last rung that timed both (or the confirmation)
    double default_seconds = 0;
    int verified = 0, failed = 0, pruned = 0, timed = 0, resumed = 0;
    bool interrupted = false;
    // Timed candidates, best first: by the highest rung reached, then by time on it (seeds for later searches).
    std::vector<int> ranking;
    std::vector<TrialRecord> trials;  // in the order they finished (resumed ones included)
};

// Progress: one call per finished trial (verify, time, prune), with a short text.
using SearchProgress = std::function<void(const std::string& what)>;

// Searches one family. `clock_offset` is added to TrialRecord::at_seconds (seconds since the whole tune began).
// Throws std::runtime_error if the default candidate fails verification (the kernels are broken).
FamilyResult search_family(const std::string& family, std::vector<Candidate>& candidates, const SearchOptions& opt,
                           TrialStore& store, double clock_offset = 0, const SearchProgress& progress = {});

// The selection rule on recorded timings of one rung (also used on the confirmation): the fastest candidate, unless
// it is not the default and does not beat the default by more than `tolerance`, in which case the default. Returns
// the index into `seconds` (entries <= 0 are untimed); default_index must be timed.
int select_winner(const std::vector<double>& seconds, int default_index, double tolerance);

// Seconds per call of `call`: after a first (warm-up) probe call, repeats batches of calls lasting about seconds / 3
// until `seconds` have passed (at least 2 batches) and returns the best batch's mean. Calls longer than seconds / 2
// are timed twice (probe included) and the faster kept.
double time_best_of(const std::function<void()>& call, double seconds);

}  // namespace mf
