// Finished search trials on disk (JSON lines in the cache dir), so `moeforge tune` resumes after Ctrl-C: a trial
// already in the store is not run again. The first line names the context (tool version, host, shape); a store
// written in another context is discarded. Each trial is appended and flushed as it finishes; a torn last line
// (the process was killed mid-write) is ignored.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace mf {

// rung -1 is the verification (seconds unused), rungs 0.. are timings, kDefaultAgain + r the default's second
// timing at the end of rung r, kConfirmRung the winner/default re-timing.
struct TrialRecord {
    static constexpr int kVerifyRung = -1;
    static constexpr int kDefaultAgain = 50;
    static constexpr int kConfirmRung = 100;
    std::string family;
    std::string label;
    int rung = 0;
    double seconds = 0;     // seconds per call; 0 when not timed
    double at_seconds = 0;  // since the start of the tune run that produced it
    bool is_default = false;
    std::string error;      // verification failure or refusal; "pruned" when skipped by the roofline
};

class TrialStore {
public:
    // An empty path keeps trials in memory only.
    TrialStore(std::filesystem::path path, std::string context);

    const TrialRecord* find(const std::string& family, const std::string& label, int rung) const;
    void add(const TrialRecord& r);  // records and appends to the file (flushed)
    size_t size() const { return records_.size(); }
    size_t loaded() const { return loaded_; }  // how many came from the file
    const std::filesystem::path& path() const { return path_; }
    // Forgets everything and truncates the file (e.g. `tune --fresh`).
    void clear();

private:
    void append_line(const std::string& line);
    std::filesystem::path path_;
    std::string context_;
    std::map<std::tuple<std::string, std::string, int>, TrialRecord> records_;
    size_t loaded_ = 0;
};

}  // namespace mf
