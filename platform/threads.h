// Names and priorities for the agent's threads.
//
// The agent runs three kinds of work: the ingest loop (a producer waits for every reply it
// makes), the outbox writer, and delivery to the hub (the publisher and paho's two threads).
// Delivery runs a little below ingest: when both want the CPU, a producer's ack goes first. It
// stays in the normal scheduling class, so a CPU-hungry process at normal priority (the POS
// application itself) cannot starve it: the kernel's fair scheduler gives every runnable thread
// a share by weight, and only SCHED_IDLE threads can be left with almost none.
#pragma once

#include <string>

namespace edgesync::platform {

// How much higher the delivery threads' nice value is than the agent's. Five steps give a
// thread about a third of the weight: against one busy thread of the agent's priority on a core
// it still gets a quarter of that core, and ingest, woken with a producer waiting, preempts it.
inline constexpr int kDeliveryNiceSteps = 5;

// Names the calling thread (at most 15 characters are kept), as `top -H` and `ps -L` show it.
void set_current_thread_name(const std::string& name);

// Raises the calling thread's nice value by `steps` (at most to 19); Linux keeps it per thread. Threads it starts later
// inherit it: this is how paho's threads get the delivery thread's priority. Only lowering the
// priority (a higher nice) needs no privilege. Returns false if the kernel refused, which
// leaves the thread as it was.
bool lower_current_thread_priority(int steps);

// The calling thread's nice value, as the kernel reports it.
int current_thread_nice();

// The calling thread's scheduling class as the kernel reports it: "idle", "batch", "normal"
// or "other".
std::string current_thread_sched_class();

}  // namespace edgesync::platform
