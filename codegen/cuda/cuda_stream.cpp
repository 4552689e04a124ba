#include "codegen/cuda/cuda_stream.hpp"

#include <stdexcept>

namespace mf {

CudaStream::CudaStream() {
    cu_check(cuda_driver().stream_create(&stream_, kCuStreamNonBlocking), "cuStreamCreate");
}

CudaStream::~CudaStream() {
    if (stream_) cuda_driver().stream_destroy(stream_);
}

void CudaStream::synchronize() const {
    cu_check(cuda_driver().stream_synchronize(stream_), "cuStreamSynchronize");
}

CudaEvent::CudaEvent() {
    cu_check(cuda_driver().event_create(&event_, 0), "cuEventCreate");
}

CudaEvent::~CudaEvent() {
    if (event_) cuda_driver().event_destroy(event_);
}

void CudaEvent::record(CuStream stream) const {
    cu_check(cuda_driver().event_record(event_, stream), "cuEventRecord");
}

void CudaEvent::synchronize() const {
    cu_check(cuda_driver().event_synchronize(event_), "cuEventSynchronize");
}

void CudaEvent::wait_on(CuStream stream) const {
    cu_check(cuda_driver().stream_wait_event(stream, event_, 0), "cuStreamWaitEvent");
}

float CudaEvent::elapsed_ms_since(const CudaEvent& start) const {
    float ms = 0.f;
    cu_check(cuda_driver().event_elapsed_time(&ms, start.event_, event_), "cuEventElapsedTime");
    return ms;
}

CudaGraph::~CudaGraph() {
    if (exec_) cuda_driver().graph_exec_destroy(exec_);
    if (graph_) cuda_driver().graph_destroy(graph_);
}

void CudaGraph::begin_capture(CuStream stream) {
    if (graph_ || exec_) throw std::logic_error("CudaGraph captured twice (" __FILE__ ")");
    cu_check(cuda_driver().stream_begin_capture(stream, kCuCaptureModeThreadLocal), "cuStreamBeginCapture");
}

void CudaGraph::end_capture(CuStream stream) {
    cu_check(cuda_driver().stream_end_capture(stream, &graph_), "cuStreamEndCapture");
    cu_check(cuda_driver().graph_instantiate(&exec_, graph_, 0), "cuGraphInstantiate");
}

void CudaGraph::launch(CuStream stream) const {
    if (!exec_) throw std::logic_error("CudaGraph::launch before end_capture (" __FILE__ ")");
    cu_check(cuda_driver().graph_launch(exec_, stream), "cuGraphLaunch");
}

}  // namespace mf
