// Streams, events (for ordering and timing) and CUDA graphs captured from a stream.
#pragma once
#include "codegen/cuda/cuda_driver.hpp"

namespace mf {

class CudaStream {
  public:
    CudaStream();  // non-blocking with respect to the legacy default stream
    ~CudaStream();
    CudaStream(const CudaStream&) = delete;
    CudaStream& operator=(const CudaStream&) = delete;

    CuStream get() const { return stream_; }
    void synchronize() const;

  private:
    CuStream stream_ = nullptr;
};

class CudaEvent {
  public:
    CudaEvent();  // with timing
    ~CudaEvent();
    CudaEvent(const CudaEvent&) = delete;
    CudaEvent& operator=(const CudaEvent&) = delete;

    CuEvent get() const { return event_; }
    void record(CuStream stream) const;
    void synchronize() const;
    // Makes `stream` wait for the work recorded before this event (cross-stream ordering).
    void wait_on(CuStream stream) const;
    // Milliseconds from `start` to this event; both must have completed.
    float elapsed_ms_since(const CudaEvent& start) const;

  private:
    CuEvent event_ = nullptr;
};

// Capture: graph.begin_capture(s); ...launches on s...; graph.end_capture(s); then graph.launch(s) any number
// of times. Kernel parameters are baked in at capture: pass per-step values through device memory.
class CudaGraph {
  public:
    CudaGraph() = default;
    ~CudaGraph();
    CudaGraph(const CudaGraph&) = delete;
    CudaGraph& operator=(const CudaGraph&) = delete;

    void begin_capture(CuStream stream);
    void end_capture(CuStream stream);  // instantiates
    void launch(CuStream stream) const;
    bool ready() const { return exec_ != nullptr; }

  private:
    CuGraph graph_ = nullptr;
    CuGraphExec exec_ = nullptr;
};

}  // namespace mf
