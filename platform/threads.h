// Names and scheduling classes for the agent's threads.
//
// The agent runs three kinds of work: the ingest loop (a producer waits for every reply it
// makes), the outbox writer, and delivery to the hub (the publisher and paho's two threads).
// Delivery has a durable queue in front of it and no one waiting on any single message, so it
// yields the CPU to ingest: on a 2-core box, publishing each event costs as much CPU as taking
// it in, and at normal priority that work delayed single-producer acks by about 20 %.
#pragma once

#include <string>

namespace edgesync::platform {

// Names the calling thread (at most 15 characters are kept), as `top -H` and `ps -L` show it.
void set_current_thread_name(const std::string& name);

// Moves the calling thread to SCHED_IDLE: it runs whenever a core is free, but any normal
// thread that wakes up preempts it at once. Threads it starts later inherit the class (this is
// how paho's threads get it). Falls back to nice 19 where SCHED_IDLE is refused; returns
// false only if neither could be set, which leaves the thread as it was.
bool make_current_thread_background();

// The calling thread's scheduling class as the kernel reports it: "idle", "batch", "normal"
// or "other".
std::string current_thread_sched_class();

}  // namespace edgesync::platform
