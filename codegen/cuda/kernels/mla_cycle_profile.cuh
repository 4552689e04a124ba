// Per-step cycle counters of the wgmma-family MLA decode kernels (config profile, a benchmark aid, never a
// tuning candidate). Each thread keeps 8 slots; mark(k) adds the clock64() cycles since the previous mark (or
// construction) to slot k. store() puts the tile count into slot 7 and, in the reporting thread of CTA (0, 0, 0),
// writes the slots to profile[first .. first + 7] (MlaDecodeParams::profile; each kernel says which thread
// reports which slots). With PROF false every member is a no-op and the counters compile away.
#pragma once

namespace mf {

template <bool PROF>
struct MlaCycleProfile {
    long long slot[8];
    long long last;  // clock64() at the previous mark

    __device__ __forceinline__ MlaCycleProfile() : slot{0, 0, 0, 0, 0, 0, 0, 0}, last(PROF ? clock64() : 0) {}

    __device__ __forceinline__ void mark(int k) {
        if constexpr (PROF) {
            const long long now = clock64();
            slot[k] += now - last;
            last = now;
        }
    }

    __device__ __forceinline__ void store(unsigned long long* profile, int first, int tiles, bool reporter) {
        if constexpr (PROF) {
            slot[7] = tiles;
            if (profile && reporter && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0)
#pragma unroll
                for (int k = 0; k < 8; ++k) profile[first + k] = (unsigned long long)slot[k];
        }
    }
};

}  // namespace mf
